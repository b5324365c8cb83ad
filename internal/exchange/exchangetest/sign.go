package exchangetest

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keywarden/keywarden/internal/exchange"
)

// CheckSignScratch holds s to the exchange.SignScratch contract on the
// request tmpl (which it does not change): signed with a scratch and
// without, the request is the same, byte for byte; a clone of the request
// signed with a scratch keeps its bytes after the scratch is reset; and
// Sign with a warmed scratch on a reused request allocates at most
// maxAllocs times (allocation counts are deterministic).
func CheckSignScratch(t *testing.T, s exchange.Signer, key *exchange.Credential, now time.Time, tmpl *exchange.Request, maxAllocs float64) {
	t.Helper()
	CheckSignScratchFresh(t, func() exchange.Signer { return s }, key, now, tmpl, maxAllocs)
}

// CheckSignScratchFresh is CheckSignScratch for a signer with state that
// changes what it signs (a nonce counter): each of the two signings it
// compares uses a new signer from newSigner.
func CheckSignScratchFresh(t *testing.T, newSigner func() exchange.Signer, key *exchange.Credential, now time.Time, tmpl *exchange.Request, maxAllocs float64) {
	t.Helper()
	plain := tmpl.Clone()
	if err := newSigner().Sign(plain, key, now); err != nil {
		t.Fatalf("Sign without scratch: %v", err)
	}
	scratch := exchange.NewSignScratch()
	lent := tmpl.Clone()
	lent.Scratch = scratch
	s := newSigner()
	if err := s.Sign(lent, key, now); err != nil {
		t.Fatalf("Sign with scratch: %v", err)
	}
	ignore := cmpopts.IgnoreFields(exchange.Request{}, "Scratch")
	if d := cmp.Diff(plain, lent, ignore, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("Sign with a scratch differs from Sign without (-without +with):\n%s", d)
	}
	kept := lent.Clone()
	scratch.Reset()
	if d := cmp.Diff(plain, kept, ignore, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("a clone of the signed request changed when the scratch was reset (-want +got):\n%s", d)
	}

	r := &exchange.Request{Header: http.Header{}, Scratch: scratch}
	reset := func() {
		scratch.Reset()
		clear(r.Header)
		for k, vs := range tmpl.Header {
			r.Header[k] = vs
		}
		r.Method, r.Path, r.RawQuery, r.Body = tmpl.Method, tmpl.Path, tmpl.RawQuery, tmpl.Body
	}
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		reset()
		if e := s.Sign(r, key, now); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if raceEnabled {
		t.Logf("Sign with a warmed scratch: %v allocations per call (not checked under the race detector, whose sync.Pool drops items)", allocs)
		return
	}
	if allocs > maxAllocs {
		t.Errorf("Sign with a warmed scratch: %v allocations per call, want at most %v", allocs, maxAllocs)
	}
}
