package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// TestWrapUnwrapOnce is V12: a wrapped credential unwraps once to exactly
// the issued secret; the store keeps only the token's hash; a second
// unwrap fails, names the credential and revokes it.
func TestWrapUnwrapOnce(t *testing.T) {
	ctx := context.Background()
	r, st, _, _ := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "okx", Key: "main", Policy: "trader", TTL: time.Hour, Format: Format{Passphrase: true}})
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.Wrap(ctx, "okx", iss.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, wrapTokenPrefix) || len(token) != wrapTokenLen {
		t.Fatalf("token %q: want %s and %d characters", token, wrapTokenPrefix, wrapTokenLen)
	}
	keys, _ := st.List(ctx, "")
	for _, k := range keys {
		v, _ := st.Get(ctx, k)
		if strings.Contains(k+string(v), token) || strings.Contains(string(v), string(iss.Secret)) {
			t.Errorf("store record %s holds the token or the secret", k)
		}
	}
	got, err := r.Unwrap(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != iss.ID || string(got.Secret) != string(iss.Secret) || string(got.Passphrase) != string(iss.Passphrase) {
		t.Fatalf("unwrapped %s, want the issued credential", got.ID)
	}
	if _, err := r.Lookup("okx", iss.ID); err != nil {
		t.Fatalf("the credential does not work after the first unwrap: %v", err)
	}
	_, err = r.Unwrap(ctx, token)
	var m *WrapMisuse
	if !errors.As(err, &m) || !errors.Is(err, ErrWrapUsed) || m.ID != iss.ID || m.Venue != "okx" || !m.Revoked {
		t.Fatalf("second unwrap = %v, want a WrapMisuse (used) naming okx/%s, revoked", err, iss.ID)
	}
	if _, err := r.Lookup("okx", iss.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after a second unwrap the credential answers %v, want it gone", err)
	}
	if c, _ := r.Get(ctx, "okx", iss.ID); c.Revoked.IsZero() {
		t.Errorf("the credential is not marked revoked")
	}
}

// TestUnwrapExpiredRevokes: a token presented after its ttl fails and
// revokes the credential; unknown and malformed tokens fail without
// touching anything.
func TestUnwrapExpiredRevokes(t *testing.T) {
	ctx := context.Background()
	r, _, _, c := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.Wrap(ctx, "binance", iss.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "kwwrap_", token[:len(token)-1], token[:len(token)-1] + "!", strings.Replace(token, "kwwrap_", "kwwrop_", 1),
		wrapTokenPrefix + strings.Repeat("A", 48)} {
		if _, err := r.Unwrap(ctx, bad); !errors.Is(err, ErrWrapInvalid) {
			t.Errorf("Unwrap(%q) = %v, want ErrWrapInvalid", bad, err)
		}
	}
	if _, err := r.Lookup("binance", iss.ID); err != nil {
		t.Fatalf("bad tokens touched the credential: %v", err)
	}
	c.t = c.t.Add(time.Minute)
	_, err = r.Unwrap(ctx, token)
	var m *WrapMisuse
	if !errors.As(err, &m) || !errors.Is(err, ErrWrapExpired) || !m.Revoked {
		t.Fatalf("expired unwrap = %v, want a WrapMisuse (expired), revoked", err)
	}
	if _, err := r.Lookup("binance", iss.ID); err == nil {
		t.Errorf("the credential still works after an expired unwrap")
	}
	// And a later attempt is a reuse.
	if _, err := r.Unwrap(ctx, token); !errors.Is(err, ErrWrapUsed) {
		t.Errorf("unwrap after the expired one = %v, want ErrWrapUsed", err)
	}
}

// TestWrapRefusals: bad ttls, unknown, revoked and public-key credentials
// cannot be wrapped.
func TestWrapRefusals(t *testing.T) {
	ctx := context.Background()
	r, _, _, _ := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wrap(ctx, "binance", iss.ID, 0); err == nil {
		t.Errorf("ttl 0 accepted")
	}
	if _, err := r.Wrap(ctx, "binance", iss.ID, MaxWrapTTL+time.Second); err == nil {
		t.Errorf("ttl over the maximum accepted")
	}
	if _, err := r.Wrap(ctx, "binance", "kwnosuch", time.Minute); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id = %v, want ErrNotFound", err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pub := pemOf(t, edPub)
	asym, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour, Kind: exchange.KeyEd25519, PublicKeyPEM: pub})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wrap(ctx, "binance", asym.ID, time.Minute); err == nil {
		t.Errorf("a public-key credential was wrapped")
	}
	if err := r.Revoke(ctx, "binance", iss.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wrap(ctx, "binance", iss.ID, time.Minute); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked credential = %v, want ErrRevoked", err)
	}
}

// TestUnwrapConcurrent: of many unwraps of one token at once exactly one
// gets the credential; the others are misuses.
func TestUnwrapConcurrent(t *testing.T) {
	ctx := context.Background()
	r, _, _, _ := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.Wrap(ctx, "binance", iss.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, used := 0, 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Unwrap(ctx, token)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrWrapUsed):
				used++
			}
		}()
	}
	wg.Wait()
	if ok != 1 || used != n-1 {
		t.Errorf("%d unwraps succeeded, %d were reuses; want 1 and %d", ok, used, n-1)
	}
}

// TestUnwrapSecretUnavailable: when the secret cannot be read (a sealed
// vault), the unwrap fails without spending the token; it works once the
// secret is back.
func TestUnwrapSecretUnavailable(t *testing.T) {
	ctx := context.Background()
	r, _, sec, _ := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.Wrap(ctx, "binance", iss.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	k := secretKind + "/binance/" + iss.ID
	sec.mu.Lock()
	saved := sec.m[k]
	delete(sec.m, k)
	sec.mu.Unlock()
	_, err = r.Unwrap(ctx, token)
	var m *WrapMisuse
	if err == nil || errors.As(err, &m) || errors.Is(err, ErrWrapInvalid) {
		t.Fatalf("unwrap without the secret = %v, want a plain error", err)
	}
	sec.mu.Lock()
	sec.m[k] = saved
	sec.mu.Unlock()
	got, err := r.Unwrap(ctx, token)
	if err != nil || string(got.Secret) != string(iss.Secret) {
		t.Fatalf("unwrap once the secret is back = %v, want the credential", err)
	}
}
