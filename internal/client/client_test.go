package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// fakeSecrets seals nothing; it only keeps secrets apart from the store so
// tests can check where they go.
type fakeSecrets struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (f *fakeSecrets) PutSecret(ctx context.Context, kind, id string, s []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[kind+"/"+id] = append([]byte(nil), s...)
	return nil
}

func (f *fakeSecrets) Secret(ctx context.Context, kind, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.m[kind+"/"+id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return append([]byte(nil), s...), nil
}

func (f *fakeSecrets) DeleteSecret(ctx context.Context, kind, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, kind+"/"+id)
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newRegistry(t *testing.T) (*Registry, *memory.Store, *fakeSecrets, *clock) {
	st := memory.New()
	sec := &fakeSecrets{m: map[string][]byte{}}
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	return New(Options{Store: st, Secrets: sec, Now: c.now}), st, sec, c
}

func TestIssueLookupRevoke(t *testing.T) {
	ctx := context.Background()
	r, st, _, c := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour,
		CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(iss.ID, "kw") || len(iss.ID) != 50 || len(iss.Secret) != 64 {
		t.Fatalf("issued id %q (len %d) secret len %d, want kw+48 and 64", iss.ID, len(iss.ID), len(iss.Secret))
	}
	// The store holds metadata only, never the secret.
	keys, _ := st.List(ctx, "")
	for _, k := range keys {
		v, _ := st.Get(ctx, k)
		if strings.Contains(string(v), string(iss.Secret)) {
			t.Fatalf("store record %s holds the secret", k)
		}
	}
	e, err := r.Lookup("binance", iss.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Cred.Secret) != string(iss.Secret) || e.Policy != "trader" || e.Key != "main" {
		t.Fatalf("lookup = %+v, want the issued credential", e.Client)
	}
	if !e.AllowsIP(netip.MustParseAddr("10.0.0.9")) || e.AllowsIP(netip.MustParseAddr("10.0.1.9")) {
		t.Errorf("cidr allowlist not applied")
	}
	if _, err := r.Lookup("okx", iss.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup at another venue = %v, want ErrNotFound", err)
	}
	// A fresh registry over the same store sees it after Load.
	r2 := New(Options{Store: st, Secrets: r.secrets, Now: c.now})
	if err := r2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lookup("binance", iss.ID); err != nil {
		t.Fatalf("after load: %v", err)
	}
	if err := r.Revoke(ctx, "binance", iss.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup("binance", iss.ID); err == nil {
		t.Fatal("revoked credential still resolves")
	}
	got, _ := r.Get(ctx, "binance", iss.ID)
	if got.Revoked.IsZero() {
		t.Error("revocation not stored")
	}
	if _, err := r.secrets.Secret(ctx, secretKind, "binance/"+iss.ID); err == nil {
		t.Error("revoked credential's secret still exists")
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	r, _, _, c := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "okx", Key: "main", Policy: "p", TTL: time.Minute, Format: Format{Passphrase: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.Passphrase) == 0 {
		t.Fatal("passphrase venue got no passphrase")
	}
	e, _ := r.Lookup("okx", iss.ID)
	if string(e.Cred.Passphrase) != string(iss.Passphrase) {
		t.Error("passphrase not kept for verification")
	}
	c.t = c.t.Add(time.Minute)
	if _, err := r.Lookup("okx", iss.ID); !errors.Is(err, ErrExpired) {
		t.Errorf("lookup after ttl = %v, want ErrExpired", err)
	}
}

func TestBase64SecretFormat(t *testing.T) {
	r, _, _, _ := newRegistry(t)
	iss, err := r.Issue(context.Background(), IssueOptions{Venue: "kraken", Key: "main", Policy: "p", TTL: time.Hour, Format: Format{Base64Secret: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(string(iss.Secret))
	if err != nil || len(b) != 64 {
		t.Fatalf("kraken-style secret decodes to %d bytes (%v), want 64", len(b), err)
	}
}

func pemOf(t *testing.T, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestAsymmetricCredentials(t *testing.T) {
	ctx := context.Background()
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name    string
		kind    exchange.KeyKind
		pem     string
		wantErr bool
	}{
		{"ed25519", exchange.KeyEd25519, pemOf(t, edPub), false},
		{"ecdsa", exchange.KeyECDSA, pemOf(t, &ec.PublicKey), false},
		{"kind mismatch", exchange.KeyEd25519, pemOf(t, &ec.PublicKey), true},
		{"not pem", exchange.KeyEd25519, "hello", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, sec, _ := newRegistry(t)
			iss, err := r.Issue(ctx, IssueOptions{Venue: "coinbase", Key: "main", Policy: "p", TTL: time.Hour, Kind: tt.kind, PublicKeyPEM: tt.pem,
				Format: Format{KeyNamePrefix: "organizations/kw/apiKeys/"}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Issue error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(iss.Secret) != 0 || len(sec.m) != 0 {
				t.Error("asymmetric credential must not create a secret")
			}
			if !strings.HasPrefix(iss.ID, "organizations/kw/apiKeys/kw") {
				t.Errorf("key name = %q, want the venue's key-name shape", iss.ID)
			}
			e, err := r.Lookup("coinbase", iss.ID)
			if err != nil {
				t.Fatal(err)
			}
			if KindOf(e.Cred.PublicKey) != tt.kind {
				t.Errorf("public key kind = %s, want %s", KindOf(e.Cred.PublicKey), tt.kind)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	r, _, _, _ := newRegistry(t)
	old, err := r.Issue(ctx, IssueOptions{Venue: "bybit", Key: "main", Policy: "p", TTL: time.Hour, Label: "bot-1"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Rotate(ctx, "bybit", old.ID, Format{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lookup("bybit", old.ID); err == nil {
		t.Error("old credential still works after rotation")
	}
	e, err := r.Lookup("bybit", n.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := Client{Venue: "bybit", Key: "main", Policy: "p", Kind: exchange.KeyHMAC, Label: "bot-1"}
	got := Client{Venue: e.Venue, Key: e.Key, Policy: e.Policy, Kind: e.Kind, Label: e.Label}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rotated binding (-want +got):\n%s", diff)
	}
	list, _ := r.List(ctx)
	if len(list) != 2 {
		t.Errorf("list has %d entries, want 2 (old kept as revoked)", len(list))
	}
}

func TestIssueValidation(t *testing.T) {
	r, _, _, _ := newRegistry(t)
	tests := []IssueOptions{
		{Key: "main", Policy: "p", TTL: time.Hour},
		{Venue: "binance", Policy: "p", TTL: time.Hour},
		{Venue: "binance", Key: "main", TTL: time.Hour},
		{Venue: "binance", Key: "main", Policy: "p"},
	}
	for _, tt := range tests {
		if _, err := r.Issue(context.Background(), tt); err == nil {
			t.Errorf("Issue(%+v) = nil error, want one", tt)
		}
	}
}

func TestNoSecretInString(t *testing.T) {
	r, _, _, _ := newRegistry(t)
	iss, _ := r.Issue(context.Background(), IssueOptions{Venue: "binance", Key: "main", Policy: "p", TTL: time.Hour})
	e, _ := r.Lookup("binance", iss.ID)
	for _, s := range []string{e.Cred.String(), e.Cred.GoString(), iss.Secret.String()} {
		if strings.Contains(s, string(iss.Secret)) {
			t.Errorf("%q shows the secret", s)
		}
	}
}
