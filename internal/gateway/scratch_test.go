package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// scratchSigner signs like testVenue but writes every value into the
// request's scratch, and records what it was lent and what it wrote.
type scratchSigner struct {
	mu    sync.Mutex
	lent  []bool
	sigs  []string // the signature headers, as written (they alias the scratch)
	texts []string // copies of them
}

func (s *scratchSigner) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	ts := r.SignBuf(20)
	ts = strconv.AppendInt(ts, now.UnixMilli(), 10)
	tss := r.SignString(ts)
	sig := r.SignBuf(64)
	sig = append(sig, tvSign(key.Secret, tvPayload(r, tss))...)
	sigs := r.SignString(sig)
	r.SetSignedHeader("X-Key", key.APIKey)
	r.SetSignedHeader("X-Ts", tss)
	r.SetSignedHeader("X-Sig", sigs)
	s.mu.Lock()
	s.lent = append(s.lent, r.Scratch != nil)
	s.sigs = append(s.sigs, sigs)
	s.texts = append(s.texts, strings.Clone(sigs))
	s.mu.Unlock()
	return nil
}

// TestSignScratchLentAndWiped: with internal/upstream's client the signer
// is lent a scratch, what it writes there reaches the venue intact request
// after request (the stub venue checks each signature), and the scratch is
// wiped once the request was forwarded.
func TestSignScratchLentAndWiped(t *testing.T) {
	ss := &scratchSigner{}
	h := newHarness(t, func(o *Options) { o.Routes[0].Venue.Signer = ss })
	for i := range 3 {
		r := signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty="+strconv.Itoa(i+1)+"&price=100", "", clientSecret, time.Now())
		if w := h.do(r); w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d %s", i, w.Code, w.Body)
		}
	}
	h.up.mu.Lock()
	defer h.up.mu.Unlock()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(h.up.received) != 3 || len(ss.lent) != 3 {
		t.Fatalf("%d requests reached the venue, %d were signed; want 3 and 3", len(h.up.received), len(ss.lent))
	}
	for i, got := range h.up.received {
		if !ss.lent[i] {
			t.Errorf("request %d: signed without a scratch", i)
		}
		if sig := got.Header.Get("X-Sig"); sig != ss.texts[i] {
			t.Errorf("request %d: venue received X-Sig %q, the signer wrote %q", i, sig, ss.texts[i])
		}
	}
	if last := ss.sigs[2]; strings.Trim(last, "\x00") != "" {
		t.Errorf("the scratch still holds the last signature %q after the request was forwarded; want it wiped", last)
	}
}

// TestSignScratchNotLentToOtherTransports: another RoundTripper may still be
// writing the request after it returned, so its signer gets no scratch.
func TestSignScratchNotLentToOtherTransports(t *testing.T) {
	ss := &scratchSigner{}
	h := newHarness(t, func(o *Options) {
		o.Routes[0].Venue.Signer = ss
		o.Transport = &deadlineTransport{}
	})
	if w := h.do(signed("POST", "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100", "", clientSecret, time.Now())); w.Code != http.StatusOK {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.lent) != 1 || ss.lent[0] {
		t.Errorf("signer lent a scratch: %v; want one request signed without", ss.lent)
	}
}
