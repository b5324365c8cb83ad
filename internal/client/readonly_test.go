package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
)

func TestAllowsScope(t *testing.T) {
	ro := &Client{ReadOnly: &Downgrade{Reason: "alert-1"}}
	full := &Client{}
	tests := []struct {
		scope    exchange.Scope
		readOnly bool
	}{
		{exchange.ScopePublic, true},
		{exchange.ScopeRead, true},
		{exchange.ScopeTrade, false},
		{exchange.ScopeTransfer, false},
		{exchange.ScopeWithdraw, false},
		{exchange.ScopeAccountAdmin, false},
		{"", false},
		{"unknown", false},
	}
	for _, tt := range tests {
		if got := ro.AllowsScope(tt.scope); got != tt.readOnly {
			t.Errorf("read-only AllowsScope(%q) = %v, want %v", tt.scope, got, tt.readOnly)
		}
		if !full.AllowsScope(tt.scope) {
			t.Errorf("AllowsScope(%q) = false for a credential that is not downgraded", tt.scope)
		}
	}
}

func TestReadOnlyDowngradeAndRestore(t *testing.T) {
	ctx := context.Background()
	r, st, sec, clk := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "p", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.SetReadOnly(ctx, "binance", iss.ID, "alice", "  "); err == nil {
		t.Error("SetReadOnly without a reason succeeded")
	}
	c, changed, err := r.SetReadOnly(ctx, "binance", iss.ID, "automatic-response", "alert alert-1")
	if err != nil || !changed {
		t.Fatalf("SetReadOnly = %v, %v; want changed", changed, err)
	}
	want := &Downgrade{Since: clk.t, By: "automatic-response", Reason: "alert alert-1"}
	if diff := cmp.Diff(want, c.ReadOnly); diff != "" {
		t.Errorf("downgrade (-want +got):\n%s", diff)
	}
	// The gateway's next lookup sees it.
	e, err := r.Lookup("binance", iss.ID)
	if err != nil {
		t.Fatal(err)
	}
	if e.AllowsScope(exchange.ScopeTrade) || !e.AllowsScope(exchange.ScopeRead) {
		t.Error("looked-up entry is not read-only")
	}
	// A second downgrade keeps the first record.
	clk.t = clk.t.Add(time.Minute)
	c, changed, err = r.SetReadOnly(ctx, "binance", iss.ID, "bob", "again")
	if err != nil || changed {
		t.Fatalf("second SetReadOnly = %v, %v; want unchanged", changed, err)
	}
	if diff := cmp.Diff(want, c.ReadOnly); diff != "" {
		t.Errorf("downgrade after a second one (-want +got):\n%s", diff)
	}
	// It is stored: a registry loaded from the same store (a restart, or
	// another replica) sees it.
	r2 := New(Options{Store: st, Secrets: sec, Now: clk.now})
	if err := r2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := r2.Lookup("binance", iss.ID); err != nil || e.ReadOnly == nil {
		t.Fatalf("after reload: %v, read-only %v; want downgraded", err, e != nil && e.ReadOnly != nil)
	}
	if _, err := r.RestoreTrading(ctx, "binance", iss.ID); err != nil {
		t.Fatal(err)
	}
	if e, _ := r.Lookup("binance", iss.ID); e.ReadOnly != nil || !e.AllowsScope(exchange.ScopeTrade) {
		t.Error("still read-only after RestoreTrading")
	}
	if _, err := r.RestoreTrading(ctx, "binance", iss.ID); !errors.Is(err, ErrNotReadOnly) {
		t.Errorf("RestoreTrading twice = %v, want ErrNotReadOnly", err)
	}
	if _, _, err := r.SetReadOnly(ctx, "binance", "nope", "a", "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetReadOnly(unknown) = %v, want ErrNotFound", err)
	}
	// A revoked credential cannot be downgraded (nor come back to life).
	if err := r.Revoke(ctx, "binance", iss.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.SetReadOnly(ctx, "binance", iss.ID, "a", "b"); !errors.Is(err, ErrRevoked) {
		t.Errorf("SetReadOnly(revoked) = %v, want ErrRevoked", err)
	}
	if got, _ := r.Get(ctx, "binance", iss.ID); got.Revoked.IsZero() {
		t.Error("revoked credential came back")
	}
}

func TestRotateKeepsReadOnly(t *testing.T) {
	ctx := context.Background()
	r, _, _, _ := newRegistry(t)
	old, err := r.Issue(ctx, IssueOptions{Venue: "okx", Key: "main", Policy: "p", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.SetReadOnly(ctx, "okx", old.ID, "alice", "investigating"); err != nil {
		t.Fatal(err)
	}
	n, err := r.Rotate(ctx, "okx", old.ID, Format{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if n.ReadOnly == nil || n.ReadOnly.Reason != "investigating" {
		t.Errorf("rotated credential downgrade = %+v, want the old one's", n.ReadOnly)
	}
	if e, err := r.Lookup("okx", n.ID); err != nil || e.AllowsScope(exchange.ScopeTrade) {
		t.Errorf("rotated credential may trade (err %v)", err)
	}
}
