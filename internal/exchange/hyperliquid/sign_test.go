package hyperliquid

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
)

// TestSignScratch: with a scratch the signer writes the same request (the
// signature is deterministic, the nonce counter is fresh for each). An
// order still allocates (305 times): the body is parsed, hashed (msgpack, EIP-712),
// signed on secp256k1 and encoded again, and the key is parsed from the
// vault's hex.
func TestSignScratch(t *testing.T) {
	k := genKey(t)
	r := &exchange.Request{Method: "POST", Path: "/exchange", Header: http.Header{}, Body: unsigned(orderAction, 1)}
	exchangetest.CheckSignScratchFresh(t, func() exchange.Signer { return NewSigner(Mainnet) },
		vaultCred(k, k.Address()), time.UnixMilli(1_700_000_000_000), r, 305)
}

func BenchmarkSign(b *testing.B) {
	k, err := eip712.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	key := vaultCred(k, k.Address())
	s := NewSigner(Mainnet)
	body := unsigned(orderAction, 1)
	r := &exchange.Request{Method: "POST", Path: "/exchange", Header: http.Header{}, Scratch: exchange.NewSignScratch()}
	now := time.UnixMilli(1_700_000_000_000)
	b.ReportAllocs()
	for b.Loop() {
		r.Scratch.Reset()
		r.Body = body
		if err := s.Sign(r, key, now); err != nil {
			b.Fatal(err)
		}
	}
}
