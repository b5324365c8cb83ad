package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

type collectSink struct {
	mu    sync.Mutex
	lines []string
}

func (c *collectSink) Send(_ context.Context, batch []audit.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range batch {
		c.lines = append(c.lines, string(e.Line))
	}
	return nil
}

func (c *collectSink) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

func newVault(t *testing.T) (*vault.Vault, *memory.Store) {
	st := memory.New()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(context.Background(), vault.InitOptions{Passphrase: []byte("correct horse battery"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	return v, st
}

// TestOrphanIntentsAreClosedAtStart: an allowed intent whose outcome was
// never written (a crash mid-request) gets an "unknown" outcome when
// keywarden starts again, and the chain still verifies.
func TestOrphanIntentsAreClosedAtStart(t *testing.T) {
	ctx := context.Background()
	v, st := newVault(t)
	dir := t.TempDir()
	binance, _ := venues.ByName("binance")
	opts := Options{Store: st, Vault: v, AuditDir: dir, Routes: []Route{{Def: binance}}}
	s, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Audit.Append(ctx, audit.Record{Type: audit.TypeIntent, RequestID: "kw-crashed-1",
		Intent: &audit.Intent{Venue: "binance", Method: "POST", Path: "/binance/api/v3/order", Decision: audit.DecisionAllow}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	sink := &collectSink{}
	opts.AuditSinks = []NamedSink{{Name: "siem", Sink: sink}}
	s, err = New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var outcome *audit.Outcome
	for r, err := range audit.Search(dir, audit.Filter{RequestID: "kw-crashed-1"}) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != nil {
			outcome = r.Outcome
		}
	}
	if outcome == nil || !strings.HasPrefix(outcome.Error, "unknown") {
		t.Fatalf("orphan outcome = %+v, want an unknown-state outcome", outcome)
	}
	// The forwarder delivers the whole log, the new outcome included.
	deadline := time.Now().Add(20 * time.Second)
	for sink.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if sink.count() < 2 {
		t.Errorf("sink received %d records, want the intent and its outcome at least", sink.count())
	}
	s.Close()
	pub, err := AuditPublicKey(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(dir, pub); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	// A third start finds nothing left to close.
	s, err = New(ctx, Options{Store: st, Vault: v, AuditDir: dir, Routes: []Route{{Def: binance}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	n := 0
	for r := range audit.Search(dir, audit.Filter{RequestID: "kw-crashed-1"}) {
		if r.Outcome != nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("orphan closed %d times, want once", n)
	}
}

func TestNewRefusesSealedVault(t *testing.T) {
	v, st := newVault(t)
	v.Seal()
	if _, err := New(context.Background(), Options{Store: st, Vault: v, AuditDir: t.TempDir()}); err == nil {
		t.Fatal("New with a sealed vault succeeded")
	}
}

func TestSealedVaultStopsTheGateway(t *testing.T) {
	v, st := newVault(t)
	binance, _ := venues.ByName("binance")
	s, err := New(context.Background(), Options{Store: st, Vault: v, AuditDir: t.TempDir(), Routes: []Route{{Def: binance}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Gateway.Healthy(); err != nil {
		t.Fatalf("healthy while unsealed: %v", err)
	}
	v.Seal()
	if err := s.Gateway.Healthy(); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("Healthy after seal = %v, want sealed", err)
	}
}
