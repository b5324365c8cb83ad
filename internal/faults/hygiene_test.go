package faults

import (
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/gateway"
)

// panickingPolicy stands in for a bug deep in the request path: it panics
// while the request, its client credential and (for the signer) the
// exchange key are all live in the goroutine's frames.
type panickingPolicy struct{}

func (panickingPolicy) Check(context.Context, gateway.Check) (gateway.Permit, error) {
	panic("policy: index out of range (simulated bug)")
}

type noAudit struct{}

func (noAudit) Intent(context.Context, gateway.Intent) error   { return nil }
func (noAudit) Outcome(context.Context, gateway.Outcome) error { return nil }

// TestHygiene_H1_PanicInHandler forces a panic inside the gateway's
// handler, with the real client registry and vault behind it, and checks
// what net/http recovers and prints (the panic value and the goroutine's
// stack) for the marker and every secret: Go prints arguments as machine
// words, never the bytes a string or slice points to.
func TestHygiene_H1_PanicInHandler(t *testing.T) {
	r := newRig(t, rigOptions{})
	// Open the exchange key first, so it is in memory during the panic.
	if _, a := r.order(); a.status != http.StatusOK {
		t.Fatalf("order = %d", a.status)
	}
	u, _ := url.Parse(r.upURL)
	g, err := gateway.New(gateway.Options{
		Routes:  []gateway.Route{{Venue: binance.Spot(u), Exchange: "binance"}},
		Clients: r.srv.Clients, Keys: r.vault, Policy: panickingPolicy{}, Audit: noAudit{},
	})
	if err != nil {
		t.Fatal(err)
	}
	var errLog syncBuffer
	s := httptest.NewUnstartedServer(g)
	s.Config.ErrorLog = log.New(&errLog, "", 0)
	s.Start()
	defer s.Close()
	saved := r.gw
	r.gw = s.URL
	_, a := r.order()
	r.gw = saved
	if a.err == nil && a.status == http.StatusOK {
		t.Fatalf("the panicking handler answered 200")
	}
	out := errLog.String()
	if !strings.Contains(out, "simulated bug") || !strings.Contains(out, "goroutine") {
		t.Fatalf("no recovered panic with a stack in the server's error log:\n%s", out)
	}
	for _, s := range r.secrets {
		if strings.Contains(out, s) {
			t.Errorf("the recovered panic output contains a secret")
		}
	}
	if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
		t.Errorf("%d orders reached the venue, want 1 (the one before the panic)", n)
	}
}
