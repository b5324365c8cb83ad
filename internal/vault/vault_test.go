package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// marker is planted in every secret; it must never show up in errors,
// logs or the store.
const marker = "CANARY-7f3a9c"

var (
	passphrase = []byte("correct horse battery staple")
	fastKDF    = MinKDF()
)

type env struct {
	store *memory.Store
	logs  *bytes.Buffer
}

func newEnv() *env { return &env{store: memory.New(), logs: &bytes.Buffer{}} }

func (e *env) vault(t *testing.T) *Vault {
	t.Helper()
	v, err := New(Options{Store: e.store, Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Seal)
	return v
}

// initPassphrase returns an unsealed vault sealed by passphrase.
func initPassphrase(t *testing.T, e *env) *Vault {
	t.Helper()
	v := e.vault(t)
	if _, err := v.Init(context.Background(), InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatalf("Init() = %v", err)
	}
	return v
}

// checkClean fails if marker appears in the logs or anywhere in the store.
func (e *env) checkClean(t *testing.T) {
	t.Helper()
	if strings.Contains(e.logs.String(), marker) {
		t.Errorf("logs contain the secret marker:\n%s", e.logs)
	}
	keys, _ := e.store.List(context.Background(), "")
	for _, k := range keys {
		v, _ := e.store.Get(context.Background(), k)
		if bytes.Contains(v, []byte(marker)) || strings.Contains(k, marker) {
			t.Errorf("store record %s contains the secret marker", k)
		}
	}
}

func noMarker(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), marker) {
		t.Errorf("error %q contains the secret marker", err)
	}
}

func TestPassphraseRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	if v.Sealed() {
		t.Fatal("Sealed() after Init = true, want false")
	}
	secret := []byte("s3cret-" + marker)
	if err := v.PutSecret(ctx, "totp", "alice", secret); err != nil {
		t.Fatalf("PutSecret() = %v", err)
	}
	v.Seal()
	if _, err := v.Secret(ctx, "totp", "alice"); !errors.Is(err, ErrSealed) {
		t.Fatalf("Secret() while sealed = %v, want ErrSealed", err)
	}

	// A fresh process: new Vault over the same store.
	v2 := e.vault(t)
	if ok, err := v2.Initialized(ctx); !ok || err != nil {
		t.Fatalf("Initialized() = %v, %v, want true", ok, err)
	}
	if err := v2.Unseal(ctx, []byte("wrong passphrase!!")); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Unseal(wrong) = %v, want ErrBadPassphrase", err)
	}
	if !v2.Sealed() {
		t.Fatal("Sealed() after a wrong passphrase = false, want true")
	}
	if err := v2.Unseal(ctx, passphrase); err != nil {
		t.Fatalf("Unseal() = %v", err)
	}
	got, err := v2.Secret(ctx, "totp", "alice")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Secret() = %q, %v, want the stored secret", got, err)
	}
	if err := v2.DeleteSecret(ctx, "totp", "alice"); err != nil {
		t.Fatalf("DeleteSecret() = %v", err)
	}
	if _, err := v2.Secret(ctx, "totp", "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Secret() after delete = %v, want ErrNotFound", err)
	}
	e.checkClean(t)
}

func TestInitErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opts InitOptions
	}{
		{"nothing", InitOptions{}},
		{"short passphrase", InitOptions{Passphrase: []byte("short"), KDF: &fastKDF}},
		{"both seals", InitOptions{Passphrase: passphrase, Shares: 3, Threshold: 2, KDF: &fastKDF}},
		{"threshold 1", InitOptions{Shares: 3, Threshold: 1}},
		{"threshold above shares", InitOptions{Shares: 2, Threshold: 3}},
		{"weak kdf", InitOptions{Passphrase: passphrase, KDF: &KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			v := e.vault(t)
			if _, err := v.Init(ctx, tt.opts); err == nil {
				t.Fatal("Init() = nil, want an error")
			}
			if ok, _ := v.Initialized(ctx); ok {
				t.Error("Initialized() after a failed Init = true, want false")
			}
		})
	}
	e := newEnv()
	v := initPassphrase(t, e)
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); !errors.Is(err, ErrInitialized) {
		t.Errorf("second Init() = %v, want ErrInitialized", err)
	}
	if err := newEnv().vault(t).Unseal(ctx, passphrase); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Unseal() before Init = %v, want ErrNotInitialized", err)
	}
}

func TestWeakenedKDFRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	initPassphrase(t, e).Seal()
	b, _ := e.store.Get(ctx, sealKey)
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["kdf"].(map[string]any)["memory_kib"] = 1024
	b, _ = json.Marshal(cfg)
	e.store.Put(ctx, sealKey, b)
	err := e.vault(t).Unseal(ctx, passphrase)
	if err == nil || !strings.Contains(err.Error(), "below the minimum") {
		t.Fatalf("Unseal() with a weakened KDF = %v, want a below-the-minimum error", err)
	}
}

// subsets calls fn with every k-element subset of 0..n-1.
func subsets(n, k int, fn func([]int)) {
	var rec func(start int, pick []int)
	rec = func(start int, pick []int) {
		if len(pick) == k {
			fn(pick)
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(pick[:len(pick):len(pick)], i))
		}
	}
	rec(0, nil)
}

func TestShamirUnseal(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := e.vault(t)
	shares, err := v.Init(ctx, InitOptions{Shares: 5, Threshold: 3})
	if err != nil || len(shares) != 5 {
		t.Fatalf("Init() = %d shares, %v, want 5", len(shares), err)
	}
	if err := v.PutSecret(ctx, "k", "id", []byte(marker)); err != nil {
		t.Fatal(err)
	}
	v.Seal()

	subsets(5, 3, func(pick []int) {
		v := e.vault(t)
		for i, p := range pick {
			got, err := v.SubmitShare(ctx, shares[p])
			want := Progress{Have: i + 1, Need: 3}
			if err != nil || got != want {
				t.Fatalf("shares %v: SubmitShare(#%d) = %+v, %v, want %+v", pick, p, got, err, want)
			}
		}
		if v.Sealed() {
			t.Fatalf("shares %v: still sealed", pick)
		}
		if s, err := v.Secret(ctx, "k", "id"); err != nil || string(s) != marker {
			t.Fatalf("shares %v: Secret() = %v", pick, err)
		}
		v.Seal()
	})
	subsets(5, 2, func(pick []int) {
		v := e.vault(t)
		for _, p := range pick {
			if _, err := v.SubmitShare(ctx, shares[p]); err != nil {
				t.Fatal(err)
			}
		}
		if !v.Sealed() {
			t.Fatalf("shares %v: unsealed with two shares", pick)
		}
		if st, _ := v.Status(ctx); st.Progress != 2 || st.Threshold != 3 {
			t.Fatalf("Status() = %+v, want progress 2 of 3", st)
		}
	})
	e.checkClean(t)
}

// reChecksum recomputes a share's checksum after a test edits it, the way
// someone forging a share would.
func reChecksum(s []byte) []byte {
	h := sha256.New()
	h.Write([]byte("keywarden shamir share v1\x00"))
	h.Write(s[:len(s)-4])
	copy(s[len(s)-4:], h.Sum(nil))
	return s
}

func TestShamirBadShares(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := e.vault(t)
	shares, err := v.Init(ctx, InitOptions{Shares: 5, Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	v.Seal()
	other, err := newEnv().vault(t).Init(ctx, InitOptions{Shares: 5, Threshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	corrupt := append([]byte(nil), shares[2]...)
	corrupt[15] ^= 1
	forged := reChecksum(append([]byte(nil), corrupt...))

	tests := []struct {
		name     string
		submit   [][]byte
		wantErr  bool
		wantHave int
	}{
		{"corrupted share", [][]byte{shares[0], corrupt}, true, 1},
		{"duplicate share", [][]byte{shares[0], shares[0]}, true, 1},
		{"share from another init", [][]byte{shares[0], other[1]}, true, 1},
		{"garbage", [][]byte{shares[0], []byte("hello")}, true, 1},
		// A share with a valid checksum but wrong content passes the share
		// checks; the keyring's authentication catches it and progress
		// resets.
		{"forged share", [][]byte{shares[0], shares[1], forged}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.vault(t)
			var (
				p   Progress
				err error
			)
			for _, s := range tt.submit {
				p, err = v.SubmitShare(ctx, s)
			}
			if (err != nil) != tt.wantErr || p.Have != tt.wantHave {
				t.Fatalf("SubmitShare() = %+v, %v, want have %d and error %v", p, err, tt.wantHave, tt.wantErr)
			}
			if !v.Sealed() {
				t.Fatal("unsealed after bad shares")
			}
			// Progress kept (or reset): the right shares still unseal.
			for _, s := range shares[tt.wantHave:3] {
				if _, err := v.SubmitShare(ctx, s); err != nil {
					t.Fatalf("SubmitShare(good) = %v", err)
				}
			}
			if v.Sealed() {
				t.Fatal("good shares did not unseal after a bad one")
			}
		})
	}
}

func TestTamperedRecords(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	if err := v.PutSecret(ctx, "api", "a", []byte("secret-a-"+marker)); err != nil {
		t.Fatal(err)
	}
	if err := v.PutSecret(ctx, "api", "b", []byte("secret-b-"+marker)); err != nil {
		t.Fatal(err)
	}
	recA, _ := e.store.Get(ctx, secretKey("api", "a"))
	recB, _ := e.store.Get(ctx, secretKey("api", "b"))

	tests := []struct {
		name string
		row  string
		val  []byte
	}{
		{"flipped ciphertext byte", secretKey("api", "a"), flip(recA, len(recA)-20)},
		{"flipped wrapped key byte", secretKey("api", "a"), flip(recA, recordHeader+20)},
		{"flipped term", secretKey("api", "a"), flip(recA, 7)},
		{"flipped version", secretKey("api", "a"), flip(recA, 15)},
		{"truncated", secretKey("api", "a"), recA[:30]},
		{"moved to another row", secretKey("api", "b"), recA},
		{"moved to another kind", secretKey("other", "a"), recA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.store.Put(ctx, tt.row, tt.val)
			defer e.store.Put(ctx, secretKey("api", "a"), recA)
			defer e.store.Put(ctx, secretKey("api", "b"), recB)
			kind, id, _ := strings.Cut(strings.TrimPrefix(tt.row, secretPrefix), "/")
			got, err := v.Secret(ctx, kind, id)
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Secret(%s, %s) = %q, %v, want ErrTampered", kind, id, got, err)
			}
			if !strings.Contains(err.Error(), kind+" "+id) {
				t.Errorf("error %q does not name the record %s %s", err, kind, id)
			}
			noMarker(t, err)
		})
	}
	if !strings.Contains(e.logs.String(), "failed authentication") {
		t.Error("tampering was not logged")
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x80
	return c
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	if err := v.PutSecret(ctx, "s", "old", []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := v.Rotate(ctx); err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	if err := v.PutSecret(ctx, "s", "new", []byte("new")); err != nil {
		t.Fatal(err)
	}
	for id, wantTerm := range map[string]uint32{"old": 1, "new": 2} {
		rec, _ := e.store.Get(ctx, secretKey("s", id))
		if term := uint32(rec[4])<<24 | uint32(rec[5])<<16 | uint32(rec[6])<<8 | uint32(rec[7]); term != wantTerm {
			t.Errorf("record %s term = %d, want %d", id, term, wantTerm)
		}
	}
	v.Seal()
	v2 := e.vault(t)
	if err := v2.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"old", "new"} {
		if got, err := v2.Secret(ctx, "s", id); err != nil || string(got) != id {
			t.Errorf("Secret(%s) after rotation = %q, %v, want %q", id, got, err, id)
		}
	}
	st, err := v2.Status(ctx)
	if err != nil || st.Term != 2 || st.Terms != 2 {
		t.Errorf("Status() = %+v, %v, want term 2 of 2", st, err)
	}
}

func TestRekey(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	if err := v.PutSecret(ctx, "s", "x", []byte("value")); err != nil {
		t.Fatal(err)
	}
	newPass := []byte("a different long passphrase")
	if _, err := v.Rekey(ctx, RekeyOptions{Passphrase: newPass, KDF: &fastKDF}); err != nil {
		t.Fatalf("Rekey(passphrase) = %v", err)
	}
	v2 := e.vault(t)
	if err := v2.Unseal(ctx, passphrase); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Unseal(old passphrase) after rekey = %v, want ErrBadPassphrase", err)
	}
	if err := v2.Unseal(ctx, newPass); err != nil {
		t.Fatalf("Unseal(new passphrase) = %v", err)
	}
	shares, err := v2.Rekey(ctx, RekeyOptions{Shares: 3, Threshold: 2})
	if err != nil || len(shares) != 3 {
		t.Fatalf("Rekey(shares) = %d shares, %v", len(shares), err)
	}
	v3 := e.vault(t)
	if err := v3.Unseal(ctx, newPass); err == nil {
		t.Fatal("Unseal(passphrase) after rekey to shares = nil, want an error")
	}
	for _, s := range shares[1:] {
		if _, err := v3.SubmitShare(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := v3.Secret(ctx, "s", "x"); err != nil || string(got) != "value" {
		t.Fatalf("Secret() after rekeys = %q, %v, want value", got, err)
	}
	v3.Seal()
	if _, err := v3.Rekey(ctx, RekeyOptions{Shares: 3, Threshold: 2}); !errors.Is(err, ErrSealed) {
		t.Fatalf("Rekey() while sealed = %v, want ErrSealed", err)
	}
}

// fakeKMS is an external seal for the KeyWrapper seam.
type fakeKMS struct{ key []byte }

func (f fakeKMS) Wrap(_ context.Context, dk []byte) ([]byte, error) {
	return sealAEAD(f.key, dk, []byte("kms"))
}
func (f fakeKMS) Unwrap(_ context.Context, w []byte) ([]byte, error) {
	return openAEAD(f.key, w, []byte("kms"))
}

func TestExternalSeal(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	kms := fakeKMS{key: bytes.Repeat([]byte{7}, 32)}
	if _, err := e.vault(t).Init(ctx, InitOptions{Wrapper: kms}); err != nil {
		t.Fatal(err)
	}
	// Another key: the error names the external seal backend, not shares.
	err := e.vault(t).UnsealWith(ctx, fakeKMS{key: bytes.Repeat([]byte{8}, 32)})
	if !errors.Is(err, ErrSealBackend) || errors.Is(err, ErrBadShares) || !strings.Contains(err.Error(), "external seal") {
		t.Fatalf("UnsealWith(wrong key) = %v, want ErrSealBackend naming the external seal", err)
	}
	v := e.vault(t)
	if err := v.UnsealWith(ctx, kms); err != nil || v.Sealed() {
		t.Fatalf("UnsealWith() = %v, want unsealed", err)
	}
}

func TestSealedRefusesSecretOps(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	initPassphrase(t, e).Seal()
	v := e.vault(t)
	in := KeyInput{Exchange: "binance", Name: "main", APIKey: "k", Secret: []byte(marker)}
	ops := map[string]func() error{
		"PutSecret":    func() error { return v.PutSecret(ctx, "k", "i", []byte(marker)) },
		"Secret":       func() error { _, err := v.Secret(ctx, "k", "i"); return err },
		"DeleteSecret": func() error { return v.DeleteSecret(ctx, "k", "i") },
		"AddKey":       func() error { _, err := v.AddKey(ctx, in); return err },
		"Credential":   func() error { _, err := v.Credential(ctx, "binance", "main"); return err },
		"Rotate":       func() error { return v.Rotate(ctx) },
		"Rekey":        func() error { _, err := v.Rekey(ctx, RekeyOptions{Shares: 3, Threshold: 2}); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			err := op()
			if !errors.Is(err, ErrSealed) || !strings.Contains(err.Error(), "vault is sealed") {
				t.Fatalf("%s() = %v, want ErrSealed", name, err)
			}
			noMarker(t, err)
		})
	}
	if fp := v.Fingerprint([]byte("x")); fp != "" {
		t.Errorf("Fingerprint() while sealed = %q, want empty", fp)
	}
}

func addHMAC(t *testing.T, v *Vault, ex, name, apiKey string) KeyInfo {
	t.Helper()
	info, err := v.AddKey(context.Background(), KeyInput{
		Exchange: ex, Name: name, Label: "bot", Kind: exchange.KeyHMAC,
		APIKey: apiKey, Secret: []byte("hmac-" + marker + "-" + name), Scopes: []string{"read", "trade"},
	})
	if err != nil {
		t.Fatalf("AddKey(%s/%s) = %v", ex, name, err)
	}
	return info
}

func TestKeyInventory(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v, err := New(Options{Store: e.store, Now: func() time.Time { return now }, Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	info := addHMAC(t, v, "binance", "main", "APIKEY-1")
	want := KeyInfo{
		Exchange: "binance", Name: "main", Label: "bot", Kind: exchange.KeyHMAC,
		Fingerprint: v.Fingerprint([]byte("APIKEY-1")), Scopes: []string{"read", "trade"},
		Created: now, Rotated: now,
	}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("AddKey() mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(info.Fingerprint, "kwfp_") || len(info.Fingerprint) != 21 {
		t.Errorf("Fingerprint = %q, want kwfp_ and 16 hex digits", info.Fingerprint)
	}

	_, err = v.AddKey(ctx, KeyInput{Exchange: "binance", Name: "other", APIKey: "APIKEY-1", Secret: []byte(marker)})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "already stored as binance/main") {
		t.Errorf("AddKey(same API key) = %v, want ErrExists naming binance/main", err)
	}
	noMarker(t, err)
	_, err = v.AddKey(ctx, KeyInput{Exchange: "binance", Name: "main", APIKey: "APIKEY-2", Secret: []byte(marker)})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "binance/main") {
		t.Errorf("AddKey(same name) = %v, want ErrExists naming binance/main", err)
	}
	// The same API key id on another exchange is another key.
	addHMAC(t, v, "okx", "main", "APIKEY-1")

	keys, err := v.Keys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID() != "binance/main" || keys[1].ID() != "okx/main" {
		t.Fatalf("Keys() = %+v, %v, want binance/main and okx/main", keys, err)
	}
	for _, k := range keys {
		b, _ := json.Marshal(k)
		if strings.Contains(string(b), marker) || strings.Contains(string(b), "APIKEY-1") {
			t.Errorf("KeyInfo JSON %s reveals the key", b)
		}
	}

	c, err := v.Credential(ctx, "binance", "main")
	if err != nil || c.APIKey != "APIKEY-1" || string(c.Secret) != "hmac-"+marker+"-main" || c.Kind != exchange.KeyHMAC {
		t.Fatalf("Credential() = %v, %v, want the stored key", c, err)
	}
	if again, _ := v.Credential(ctx, "binance", "main"); again != c {
		t.Error("Credential() twice returned different values, want the cached one")
	}

	used := now.Add(time.Hour)
	if err := v.MarkUsed(ctx, "binance", "main", used); err != nil {
		t.Fatal(err)
	}
	if k, _ := v.Key(ctx, "binance", "main"); !k.LastUsed.Equal(used) {
		t.Errorf("Key().LastUsed = %v, want %v", k.LastUsed, used)
	}

	if err := v.RemoveKey(ctx, "binance", "main"); err != nil {
		t.Fatalf("RemoveKey() = %v", err)
	}
	if string(c.Secret) == "hmac-"+marker+"-main" {
		t.Error("cached credential not zeroed on RemoveKey")
	}
	if _, err := v.Credential(ctx, "binance", "main"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Credential() after remove = %v, want ErrNotFound", err)
	}
	if err := v.RemoveKey(ctx, "binance", "main"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveKey() twice = %v, want ErrNotFound", err)
	}
	if left, _ := e.store.List(ctx, secretPrefix+exchangeKind+"/binance/"); len(left) != 0 {
		t.Errorf("sealed secret left after RemoveKey: %v", left)
	}
	// The API key can be added again once removed.
	addHMAC(t, v, "binance", "again", "APIKEY-1")
	e.checkClean(t)
}

func TestAddKeyRejects(t *testing.T) {
	ctx := context.Background()
	v := initPassphrase(t, newEnv())
	ok := KeyInput{Exchange: "binance", Name: "main", APIKey: "k", Secret: []byte(marker)}
	tests := []struct {
		name string
		edit func(*KeyInput)
	}{
		{"no exchange", func(in *KeyInput) { in.Exchange = "" }},
		{"upper-case exchange", func(in *KeyInput) { in.Exchange = "Binance" }},
		{"slash in name", func(in *KeyInput) { in.Name = "a/b" }},
		{"no api key", func(in *KeyInput) { in.APIKey = "" }},
		{"no secret", func(in *KeyInput) { in.Secret = nil }},
		{"bad scope", func(in *KeyInput) { in.Scopes = []string{"everything"} }},
		{"bad kind", func(in *KeyInput) { in.Kind = "dsa" }},
		{"ed25519 not a key", func(in *KeyInput) { in.Kind = exchange.KeyEd25519 }},
		{"rsa not a key", func(in *KeyInput) { in.Kind = exchange.KeyRSA }},
		{"control character in label", func(in *KeyInput) { in.Label = "a\nb" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			_, err := v.AddKey(ctx, in)
			if err == nil {
				t.Fatal("AddKey() = nil, want an error")
			}
			noMarker(t, err)
		})
	}
	if keys, _ := v.Keys(ctx); len(keys) != 0 {
		t.Errorf("Keys() after refused adds = %v, want none", keys)
	}
}

func TestVaultPrintsNoKeys(t *testing.T) {
	ctx := context.Background()
	v := initPassphrase(t, newEnv())
	if err := v.PutSecret(ctx, "s", "x", []byte(marker)); err != nil {
		t.Fatal(err)
	}
	c := addHMAC(t, v, "binance", "main", "K")
	if _, err := v.Credential(ctx, c.Exchange, c.Name); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "vault", v)
	for _, s := range []string{fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), logs.String()} {
		if strings.Contains(s, marker) {
			t.Errorf("formatted vault %q contains a secret", s)
		}
	}
}

func TestKeyInputRedacts(t *testing.T) {
	in := KeyInput{Exchange: "binance", Name: "main", APIKey: "k", Secret: []byte(marker), Passphrase: []byte(marker)}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "in", in)
	for _, s := range []string{fmt.Sprintf("%v", in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in), logs.String()} {
		if strings.Contains(s, marker) {
			t.Errorf("formatted KeyInput %q contains the secret", s)
		}
	}
}

func TestSealZeroesCache(t *testing.T) {
	ctx := context.Background()
	v := initPassphrase(t, newEnv())
	addHMAC(t, v, "binance", "main", "K")
	c, err := v.Credential(ctx, "binance", "main")
	if err != nil {
		t.Fatal(err)
	}
	secret := c.Secret
	ring, root := v.ring.buf, v.root
	v.Seal()
	if !bytes.Equal(secret, make([]byte, len(secret))) {
		t.Error("cached secret not zeroed by Seal")
	}
	if ring.IsAlive() || root.IsAlive() {
		t.Error("memguard buffers still alive after Seal, want destroyed")
	}
	if v.root != nil || v.ring != nil || len(v.creds) != 0 {
		t.Error("Seal left key material referenced")
	}
}

func TestFingerprintStable(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	fp := v.Fingerprint([]byte("APIKEY"))
	v.Rotate(ctx)
	if got := v.Fingerprint([]byte("APIKEY")); got != fp {
		t.Errorf("Fingerprint() after Rotate = %q, want %q", got, fp)
	}
	v.Seal()
	v2 := e.vault(t)
	if err := v2.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	if got := v2.Fingerprint([]byte("APIKEY")); got != fp {
		t.Errorf("Fingerprint() after restart = %q, want %q", got, fp)
	}
	if got := v2.Fingerprint([]byte("APIKEY2")); got == fp {
		t.Error("different inputs share a fingerprint")
	}
	if other := initPassphrase(t, newEnv()).Fingerprint([]byte("APIKEY")); other == fp {
		t.Error("two installations share a fingerprint key")
	}
}

func TestMetadataTamperRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	addHMAC(t, v, "binance", "main", "K")
	b, _ := e.store.Get(ctx, keyMetaKey("binance", "main"))
	e.store.Put(ctx, keyMetaKey("binance", "main"), bytes.Replace(b, []byte(`"kind":"hmac"`), []byte(`"kind":"ed25519"`), 1))
	if _, err := v.Credential(ctx, "binance", "main"); !errors.Is(err, ErrTampered) {
		t.Errorf("Credential() with edited kind = %v, want ErrTampered", err)
	}
	e.store.Put(ctx, keyMetaKey("binance", "main"), bytes.Replace(b, []byte(`"secret_version":1`), []byte(`"secret_version":2`), 1))
	if _, err := v.Credential(ctx, "binance", "main"); !errors.Is(err, ErrTampered) {
		t.Errorf("Credential() with another secret version = %v, want ErrTampered", err)
	}
}

// fullStore fails every write with ENOSPC, like a full disk.
type fullStore struct{ *memory.Store }

func (f fullStore) Put(context.Context, string, []byte) error { return syscall.ENOSPC }
func (f fullStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return f.Store.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return fmt.Errorf("commit: %w", syscall.ENOSPC)
	})
}

func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	v, err := New(Options{Store: mem})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	before, _ := mem.List(ctx, "")
	full, _ := New(Options{Store: fullStore{mem}})
	if err := full.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	_, err = full.AddKey(ctx, KeyInput{Exchange: "binance", Name: "main", APIKey: "K", Secret: []byte(marker)})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("AddKey() on a full disk = %v, want ENOSPC", err)
	}
	noMarker(t, err)
	if err := full.PutSecret(ctx, "s", "x", []byte(marker)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("PutSecret() on a full disk = %v, want ENOSPC", err)
	}
	if err := full.Rotate(ctx); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Rotate() on a full disk = %v, want ENOSPC", err)
	}
	after, _ := mem.List(ctx, "")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("records changed by failed writes (-before +after):\n%s", diff)
	}
	// The keyring in memory did not advance past what the store holds.
	if st, _ := full.Status(ctx); st.Term != 1 {
		t.Errorf("Status().Term after a failed Rotate = %d, want 1", st.Term)
	}
}

func TestNewNeedsTransactions(t *testing.T) {
	type plain struct{ store.Store }
	if _, err := New(Options{Store: plain{memory.New()}}); err == nil {
		t.Error("New() with a non-transactional store = nil, want an error")
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	addHMAC(t, v, "binance", "a", "K1")
	addHMAC(t, v, "binance", "b", "K2")
	if p, err := v.Verify(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Verify() = %v, %v, want no problems", p, err)
	}
	// Break the store three ways, as a partial write would.
	e.store.Delete(ctx, keyFPKey("binance", v.Fingerprint([]byte("K2"))))
	e.store.Put(ctx, secretKey(exchangeKind, "binance/orphan"), []byte("x"))
	blob, _ := e.store.Get(ctx, secretKey(exchangeKind, "binance/a"))
	e.store.Put(ctx, secretKey(exchangeKind, "binance/a"), flip(blob, len(blob)-1))
	p, err := v.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range p {
		got = append(got, x.Record)
	}
	want := []string{"binance/a", "binance/b", secretKey(exchangeKind, "binance/orphan")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify() records mismatch (-want +got):\n%s", diff)
	}
}

// TestRotateMany rotates far more often than a memlock-limited process
// could afford one locked buffer per term, and checks every term still
// opens after a restart.
func TestRotateMany(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	const rotations = 60
	for i := range rotations {
		if err := v.PutSecret(ctx, "s", fmt.Sprint(i), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
		if err := v.Rotate(ctx); err != nil {
			t.Fatalf("Rotate() #%d = %v", i+1, err)
		}
	}
	v.Seal()
	v2 := e.vault(t)
	if err := v2.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	for i := range rotations {
		got, err := v2.Secret(ctx, "s", fmt.Sprint(i))
		if err != nil || string(got) != fmt.Sprint("v", i) {
			t.Fatalf("Secret(%d) = %q, %v", i, got, err)
		}
	}
	if st, _ := v2.Status(ctx); st.Term != rotations+1 || st.Terms != rotations+1 {
		t.Errorf("Status() = term %d of %d, want %d", st.Term, st.Terms, rotations+1)
	}
}

// TestConcurrentUseAndSeal races the hot path against sealing and
// unsealing; run with -race. Every Credential call either succeeds with the
// right key or reports ErrSealed.
func TestConcurrentUseAndSeal(t *testing.T) {
	ctx := context.Background()
	e := newEnv()
	v := initPassphrase(t, e)
	addHMAC(t, v, "binance", "main", "K")
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				c, err := v.Credential(ctx, "binance", "main")
				if err != nil && !errors.Is(err, ErrSealed) {
					errs <- err
					return
				}
				if err == nil && c.APIKey != "K" {
					errs <- fmt.Errorf("Credential().APIKey = %q, want K", c.APIKey)
					return
				}
				_ = v.Fingerprint([]byte("x"))
			}
		}()
	}
	for range 2 {
		v.Seal()
		if err := v.Unseal(ctx, passphrase); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
