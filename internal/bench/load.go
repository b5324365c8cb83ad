package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/loadgen"
)

// orderParams is the order every request places; with timestamp,
// recvWindow and signature the form body is about 210 bytes.
const orderParams = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100000&price=50000.00&newClientOrderId="

// orderBuilder signs Binance-style POST /api/v3/order requests to base
// (path prefix included) with one of creds, the i-th request of
// connection c using credential c mod len(creds). Every request has its own
// newClientOrderId, so no two are the same signed bytes and the gateway's
// replay check never refuses them.
type orderBuilder struct {
	url    string
	creds  []*exchange.Credential
	signer exchange.Signer
	seq    *atomic.Uint64
	run    string
}

func newOrderBuilder(base string, creds []*exchange.Credential, seq *atomic.Uint64) (*orderBuilder, error) {
	var nonce [3]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	return &orderBuilder{url: base + "/api/v3/order", creds: creds, signer: binance.Spot(nil).Signer,
		seq: seq, run: hex.EncodeToString(nonce[:])}, nil
}

func (b *orderBuilder) build(c, _ int) (*http.Request, error) {
	n := b.seq.Add(1)
	body := make([]byte, 0, 256)
	body = append(body, orderParams...)
	body = append(body, "kwb"...)
	body = append(body, b.run...)
	body = fmt.Appendf(body, "%013d", n)
	r := &exchange.Request{Method: http.MethodPost, Path: "/api/v3/order", Header: http.Header{}, Body: body}
	if err := b.signer.Sign(r, b.creds[c%len(b.creds)], time.Now()); err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, b.url, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header
	req.ContentLength = int64(len(r.Body))
	return req, nil
}

var _ loadgen.Builder = (*orderBuilder)(nil).build

// bodyLen returns the length of one signed order body, for the report.
func (b *orderBuilder) bodyLen() int {
	req, err := b.build(0, 0)
	if err != nil {
		return 0
	}
	return int(req.ContentLength)
}

// randomKey returns a throwaway API key and HMAC secret made for one run.
func randomKey() (apiKey, secret string) {
	return rand.Text() + rand.Text(), rand.Text() + rand.Text()
}
