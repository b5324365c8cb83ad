package vault

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestDisableKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	if _, err := v.AddKey(ctx, KeyInput{Exchange: "bybit", Name: "bot", APIKey: "k1", Secret: exchange.Secret("s1"), Scopes: []string{"read", "trade"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Credential(ctx, "bybit", "bot"); err != nil {
		t.Fatalf("Credential before disable = %v", err)
	}
	info, err := v.DisableKey(ctx, "bybit", "bot", "bot host compromised")
	if err != nil {
		t.Fatalf("DisableKey = %v", err)
	}
	if info.Disabled.IsZero() || info.DisabledReason != "bot host compromised" {
		t.Errorf("DisableKey = %+v, want disabled with reason", info)
	}
	if _, err := v.Credential(ctx, "bybit", "bot"); !errors.Is(err, ErrDisabled) {
		t.Errorf("Credential after disable = %v, want ErrDisabled", err)
	}
	again, err := v.DisableKey(ctx, "bybit", "bot", "second reason")
	if err != nil || again.DisabledReason != "bot host compromised" || !again.Disabled.Equal(info.Disabled) {
		t.Errorf("DisableKey again = %+v, %v, want the first time and reason kept", again, err)
	}
	if _, err := v.ReplaceKeySecret(ctx, "bybit", "bot", KeyInput{APIKey: "k2", Secret: exchange.Secret("s2")}); !errors.Is(err, ErrDisabled) {
		t.Errorf("ReplaceKeySecret on a disabled key = %v, want ErrDisabled", err)
	}
	if _, err := v.DisableKey(ctx, "bybit", "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DisableKey(missing) = %v, want ErrNotFound", err)
	}
}

func TestReplaceKeySecret(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	old, err := v.AddKey(ctx, KeyInput{Exchange: "okx", Name: "bot", APIKey: "k1", Secret: exchange.Secret("s1"), Passphrase: exchange.Secret("p1"), Scopes: []string{"read", "trade"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddKey(ctx, KeyInput{Exchange: "okx", Name: "other", APIKey: "k9", Secret: exchange.Secret("s9")}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Credential(ctx, "okx", "bot"); err != nil { // cache it
		t.Fatal(err)
	}
	info, err := v.ReplaceKeySecret(ctx, "okx", "bot", KeyInput{APIKey: "k2", Secret: exchange.Secret("s2-" + marker), Passphrase: exchange.Secret("p2")})
	noMarker(t, err)
	if err != nil {
		t.Fatalf("ReplaceKeySecret = %v", err)
	}
	if info.Fingerprint == old.Fingerprint || strings.Join(info.Scopes, ",") != "read,trade" || !info.Created.Equal(old.Created) {
		t.Errorf("ReplaceKeySecret = %+v, want a new fingerprint, same scopes and created", info)
	}
	c, err := v.Credential(ctx, "okx", "bot")
	if err != nil || c.APIKey != "k2" || string(c.Secret) != "s2-"+marker || string(c.Passphrase) != "p2" {
		t.Errorf("Credential after replace = %v, %v, want k2/s2/p2", c, err)
	}
	// the old API key may be added again under another name; the new one may not
	if _, err := v.AddKey(ctx, KeyInput{Exchange: "okx", Name: "again", APIKey: "k1", Secret: exchange.Secret("s1")}); err != nil {
		t.Errorf("AddKey(old api key) = %v, want its fingerprint freed", err)
	}
	if _, err := v.AddKey(ctx, KeyInput{Exchange: "okx", Name: "dup", APIKey: "k2", Secret: exchange.Secret("s2")}); !errors.Is(err, ErrExists) {
		t.Errorf("AddKey(new api key) = %v, want ErrExists", err)
	}
	if _, err := v.ReplaceKeySecret(ctx, "okx", "bot", KeyInput{APIKey: "k9", Secret: exchange.Secret("s")}); !errors.Is(err, ErrExists) {
		t.Errorf("ReplaceKeySecret(another key's api key) = %v, want ErrExists", err)
	}
	if _, err := v.ReplaceKeySecret(ctx, "okx", "bot", KeyInput{APIKey: "k2", Secret: exchange.Secret("s")}); !errors.Is(err, ErrExists) {
		t.Errorf("ReplaceKeySecret(same api key) = %v, want ErrExists", err)
	}
	if c, err := v.Credential(ctx, "okx", "bot"); err != nil || c.APIKey != "k2" {
		t.Errorf("Credential after refused replaces = %v, %v, want k2", c, err)
	}
	// a fresh vault over the same store opens the new secret
	v.Seal()
	v2 := e.vault(t)
	if err := v2.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	if c, err := v2.Credential(ctx, "okx", "bot"); err != nil || c.APIKey != "k2" {
		t.Errorf("Credential after reopen = %v, %v, want k2", c, err)
	}
	e.checkClean(t)
}
