package vault

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestKeyPrints(t *testing.T) {
	ctx := context.Background()
	v := initPassphrase(t, newEnv())
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if _, err := v.AddKey(ctx, KeyInput{Exchange: "binance", Name: "main", APIKey: "APIKEY-1",
		Secret: []byte("hmac-secret-1"), Passphrase: []byte("pass-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.AddKey(ctx, KeyInput{Exchange: "coinbase", Name: "cdp", APIKey: "organizations/o/apiKeys/k",
		Kind: exchange.KeyEd25519, Secret: pemKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DisableKey(ctx, "binance", "main", "test"); err != nil {
		t.Fatal(err)
	}
	prints, err := v.KeyPrints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(prints) != 2 {
		t.Fatalf("KeyPrints() = %d entries, want 2", len(prints))
	}
	bn, cb := prints[0], prints[1]
	if bn.Key.ID() != "binance/main" || bn.APIKey != v.Fingerprint([]byte("APIKEY-1")) ||
		!slices.Equal(bn.Secret, []string{v.Fingerprint([]byte("hmac-secret-1"))}) || bn.Passphrase != v.Fingerprint([]byte("pass-1")) {
		t.Errorf("binance print = %+v, want fingerprints of its id, secret and passphrase", bn)
	}
	pubFP, err := v.PublicKeyFingerprint(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if cb.Key.ID() != "coinbase/cdp" || !slices.Contains(cb.Secret, pubFP) || cb.Passphrase != "" {
		t.Errorf("coinbase print = %+v, want the public key fingerprint %s among its secret prints", cb, pubFP)
	}
	v.Seal()
	if _, err := v.KeyPrints(ctx); !errors.Is(err, ErrSealed) {
		t.Errorf("KeyPrints() sealed = %v, want ErrSealed", err)
	}
	if fp, _ := v.PublicKeyFingerprint(priv.Public()); fp != "" {
		t.Errorf("PublicKeyFingerprint() sealed = %q, want empty", fp)
	}
}
