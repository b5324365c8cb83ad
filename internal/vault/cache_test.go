package vault

import (
	"context"
	"errors"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// TestDropCachedSeesOtherWriters: two vaults over one store, as two
// replicas: a key rotated or disabled through one is used by the other only
// after it drops its cached credentials, and then at once.
func TestDropCachedSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	pass := []byte("replica passphrase 1")
	kdf := MinKDF()
	a, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Init(ctx, InitOptions{Passphrase: pass, KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddKey(ctx, KeyInput{Exchange: "binance", Name: "main", APIKey: "old-key", Secret: exchange.Secret("old-secret")}); err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(ctx, pass); err != nil {
		t.Fatal(err)
	}
	if c, err := b.Credential(ctx, "binance", "main"); err != nil || c.APIKey != "old-key" {
		t.Fatalf("b.Credential = %v, %v", c, err)
	}
	if _, err := a.ReplaceKeySecret(ctx, "binance", "main", KeyInput{APIKey: "new-key", Secret: exchange.Secret("new-secret")}); err != nil {
		t.Fatal(err)
	}
	if c, _ := b.Credential(ctx, "binance", "main"); c.APIKey != "old-key" {
		t.Fatalf("before DropCached b signs with %q, want its cached old key", c.APIKey)
	}
	b.DropCached()
	if c, err := b.Credential(ctx, "binance", "main"); err != nil || c.APIKey != "new-key" || string(c.Secret) != "new-secret" {
		t.Fatalf("after DropCached b.Credential = %v, %v; want the new key", c, err)
	}
	if _, err := a.DisableKey(ctx, "binance", "main", "leaked"); err != nil {
		t.Fatal(err)
	}
	b.DropCached()
	if _, err := b.Credential(ctx, "binance", "main"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("after a disable elsewhere b.Credential = %v, want ErrDisabled", err)
	}
}
