package vault

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
	"github.com/keywarden/keywarden/internal/store/sqlite"
)

// txStore is a store the vault accepts.
type txStore interface {
	store.Store
	store.Transactional
}

// rollbackStores are the stores the rollback tests run on: the vault's
// protection lives above the store, so each must behave the same.
// PostgreSQL runs when KEYWARDEN_TEST_POSTGRES names a server
// (scripts/setup/postgres.sh) and skips otherwise.
func rollbackStores(t *testing.T) map[string]func(t *testing.T) txStore {
	return map[string]func(t *testing.T) txStore{
		"memory": func(t *testing.T) txStore { return memory.New() },
		"sqlite": func(t *testing.T) txStore {
			db, err := sqlite.Open(context.Background(), sqlite.Options{Dir: filepath.Join(t.TempDir(), "data")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		"postgres": func(t *testing.T) txStore {
			db, err := postgres.Open(context.Background(), postgres.Options{DSN: pgtest.NewDatabase(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
	}
}

// openVault returns a sealed vault over st (a process starting) logging to
// logs.
func openVault(t *testing.T, st txStore, logs *bytes.Buffer) *Vault {
	t.Helper()
	v, err := New(Options{Store: st, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Seal)
	return v
}

// initVault opens a vault over st logging to a fresh buffer and
// initialises it with the test passphrase.
func initVault(t *testing.T, st txStore) (*Vault, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	v := openVault(t, st, logs)
	if _, err := v.Init(context.Background(), InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		t.Fatal(err)
	}
	return v, logs
}

// rows reads the given store keys; a missing one is nil.
func rows(t *testing.T, st txStore, keys ...string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		b, err := st.Get(context.Background(), k)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// putBack writes rows into the store as they were, deleting the ones that
// were missing: what a restore of those rows, or someone with write
// access to the database, does.
func putBack(t *testing.T, st txStore, rows map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	for k, b := range rows {
		var err error
		if b == nil {
			if err = st.Delete(ctx, k); errors.Is(err, store.ErrNotFound) {
				err = nil
			}
		} else {
			err = st.Put(ctx, k, b)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// wantRollback fails unless err is a RollbackError for record that also
// matches ErrTampered and leaks no secret.
func wantRollback(t *testing.T, what string, err error, record string) {
	t.Helper()
	var rb *RollbackError
	if !errors.Is(err, ErrRollback) || !errors.Is(err, ErrTampered) || !errors.As(err, &rb) {
		t.Fatalf("%s = %v, want a RollbackError (ErrRollback, ErrTampered)", what, err)
	}
	if rb.Record != record {
		t.Errorf("%s: RollbackError.Record = %q, want %q", what, rb.Record, record)
	}
	noMarker(t, err)
}

func TestSecurity_V7_RollbackOfExchangeKeyRefused(t *testing.T) {
	for name, newStore := range rollbackStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			v, logs := initVault(t, st)
			if _, err := v.AddKey(ctx, KeyInput{Exchange: "binance", Name: "main", APIKey: "OLDKEY", Secret: []byte("old-" + marker)}); err != nil {
				t.Fatal(err)
			}
			meta, secret := keyMetaKey("binance", "main"), secretKey(exchangeKind, "binance/main")
			// The manifest shard the key falls in: with the head, the
			// whole manifest as far as this key is concerned.
			shard := shardKeys[shardOf(manifestName(exchangeKind, "binance/main"))]
			old := rows(t, st, meta, secret, shard, versionsKey)
			if _, err := v.ReplaceKeySecret(ctx, "binance", "main", KeyInput{APIKey: "NEWKEY", Secret: []byte("new-" + marker)}); err != nil {
				t.Fatal(err)
			}
			cur := rows(t, st, meta, secret, shard, versionsKey)

			read := func(v *Vault) (string, error) {
				v.dropCached("binance/main")
				c, err := v.Credential(ctx, "binance", "main")
				if err != nil {
					return "", err
				}
				return c.APIKey, nil
			}
			if got, err := read(v); err != nil || got != "NEWKEY" {
				t.Fatalf("Credential() after rotation = %q, %v, want NEWKEY", got, err)
			}
			genAfterRotation := v.VersionGeneration()

			tests := []struct {
				name string
				rows []string
			}{
				{"secret row alone", []string{secret}},
				{"secret row with its metadata", []string{secret, meta}},
				{"secret, metadata and version manifest head", []string{secret, meta, versionsKey}},
				{"secret, metadata, manifest shard and head", []string{secret, meta, shard, versionsKey}},
				{"secret and manifest shard", []string{secret, shard}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					back := map[string][]byte{}
					for _, k := range tt.rows {
						back[k] = old[k]
					}
					putBack(t, st, back)
					got, err := read(v)
					record := exchangeKind + " binance/main"
					if tt.rows[len(tt.rows)-1] == versionsKey {
						record = versionsKey
					}
					wantRollback(t, "Credential() of the rolled-back key", err, record)
					if got != "" {
						t.Errorf("Credential() of the rolled-back key returned key %q", got)
					}
					putBack(t, st, cur)
					if got, err := read(v); err != nil || got != "NEWKEY" {
						t.Errorf("Credential() with the current rows back = %q, %v, want NEWKEY", got, err)
					}
				})
			}
			if !strings.Contains(logs.String(), "rolled back") {
				t.Error("no rollback was logged")
			}

			// After a restart the manifest still pins the version.
			putBack(t, st, map[string][]byte{secret: old[secret], meta: old[meta]})
			v.Seal()
			v2 := openVault(t, st, logs)
			if err := v2.Unseal(ctx, passphrase); err != nil {
				t.Fatal(err)
			}
			// Init, AddKey and ReplaceKeySecret each wrote a generation;
			// the unseal says which one it found.
			if !strings.Contains(logs.String(), `"versions_generation":3`) {
				t.Error(`the unseal did not log "versions_generation":3`)
			}
			_, err := read(v2)
			wantRollback(t, "Credential() of the rolled-back key after a restart", err, exchangeKind+" binance/main")
			problems, err := v2.Verify(ctx)
			found := false
			for _, p := range problems {
				found = found || p.Record == "binance/main" && strings.Contains(p.Issue, "older version")
			}
			if err != nil || !found {
				t.Errorf("Verify() = %+v, %v, want a problem with binance/main naming the older version", problems, err)
			}

			// The documented limit: every row put back to the same
			// earlier moment, read by a process that never saw a
			// later manifest, opens the old key. Its manifest
			// generation is lower than the one seen before.
			putBack(t, st, old)
			v2.Seal()
			v3 := openVault(t, st, logs)
			if err := v3.Unseal(ctx, passphrase); err != nil {
				t.Fatal(err)
			}
			if got, err := read(v3); err != nil || got != "OLDKEY" {
				t.Fatalf("Credential() after a whole restore, new process = %q, %v, want OLDKEY (documented limit)", got, err)
			}
			if g := v3.VersionGeneration(); g >= genAfterRotation {
				t.Errorf("VersionGeneration() after a whole restore = %d, want below %d", g, genAfterRotation)
			}
		})
	}
}

func TestSecurity_V7_RollbackOfSecretRefused(t *testing.T) {
	for name, newStore := range rollbackStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			v, logs := initVault(t, st)
			row := secretKey("client-secret", "binance/c1")
			if err := v.PutSecret(ctx, "client-secret", "binance/c1", []byte("v1-"+marker)); err != nil {
				t.Fatal(err)
			}
			v1 := rows(t, st, row)
			if err := v.PutSecret(ctx, "client-secret", "binance/c1", []byte("v2-"+marker)); err != nil {
				t.Fatal(err)
			}
			v2 := rows(t, st, row)

			putBack(t, st, v1)
			_, err := v.Secret(ctx, "client-secret", "binance/c1")
			wantRollback(t, "Secret() rolled back", err, "client-secret binance/c1")
			var rb *RollbackError
			if errors.As(err, &rb); rb.Stored != 1 || rb.Want != 2 {
				t.Errorf("RollbackError versions = stored %d, current %d, want 1 and 2", rb.Stored, rb.Want)
			}
			putBack(t, st, v2)
			if got, err := v.Secret(ctx, "client-secret", "binance/c1"); err != nil || string(got) != "v2-"+marker {
				t.Fatalf("Secret() with the current row = %v, want the current secret", err)
			}

			// A deleted secret does not come back, and a new one
			// under the same id never reuses a version.
			if err := v.DeleteSecret(ctx, "client-secret", "binance/c1"); err != nil {
				t.Fatal(err)
			}
			putBack(t, st, v2)
			_, err = v.Secret(ctx, "client-secret", "binance/c1")
			wantRollback(t, "Secret() of a deleted secret put back", err, "client-secret binance/c1")
			if err := v.PutSecret(ctx, "client-secret", "binance/c1", []byte("v3")); err != nil {
				t.Fatal(err)
			}
			b, _ := st.Get(ctx, row)
			if ver, _ := recordVersion(b); ver != 3 {
				t.Errorf("version of a secret written after a delete = %d, want 3", ver)
			}

			// A manifest that fails its MAC, or that is gone, refuses
			// every read, in this process and after a restart.
			man := rows(t, st, versionsKey)
			putBack(t, st, map[string][]byte{versionsKey: flip(man[versionsKey], len(man[versionsKey])-2)})
			if _, err := v.Secret(ctx, "client-secret", "binance/c1"); !errors.Is(err, ErrTampered) {
				t.Errorf("Secret() with a forged manifest = %v, want ErrTampered", err)
			}
			putBack(t, st, map[string][]byte{versionsKey: nil})
			_, err = v.Secret(ctx, "client-secret", "binance/c1")
			wantRollback(t, "Secret() without a manifest", err, versionsKey)
			v.Seal()
			again := openVault(t, st, logs)
			if err := again.Unseal(ctx, passphrase); err != nil {
				t.Fatal(err)
			}
			_, err = again.Secret(ctx, "client-secret", "binance/c1")
			wantRollback(t, "Secret() without a manifest after a restart", err, versionsKey)
			if err := again.PutSecret(ctx, "client-secret", "other", []byte("x")); !errors.Is(err, ErrRollback) {
				t.Errorf("PutSecret() without a manifest = %v, want ErrRollback", err)
			}
			if _, err := st.Get(ctx, versionsKey); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a missing manifest was rebuilt (Get = %v)", err)
			}
		})
	}
}

func TestSecurity_V7_KeyRemovedWhileSealedStaysRemoved(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v, logs := initVault(t, st)
	if _, err := v.AddKey(ctx, KeyInput{Exchange: "okx", Name: "main", APIKey: "K", Secret: []byte(marker), Passphrase: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	fp, _ := v.Key(ctx, "okx", "main")
	saved := rows(t, st, keyMetaKey("okx", "main"), secretKey(exchangeKind, "okx/main"), keyFPKey("okx", fp.Fingerprint))
	v.Seal()
	// keywarden key remove works without unsealing.
	cli := openVault(t, st, logs)
	if err := cli.RemoveKey(ctx, "okx", "main"); err != nil {
		t.Fatal(err)
	}
	srv := openVault(t, st, logs)
	if err := srv.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	putBack(t, st, saved)
	_, err := srv.Credential(ctx, "okx", "main")
	wantRollback(t, "Credential() of a removed key put back", err, exchangeKind+" okx/main")

	// Added again under the same name, the key continues the versions.
	putBack(t, st, map[string][]byte{keyMetaKey("okx", "main"): nil, secretKey(exchangeKind, "okx/main"): nil, keyFPKey("okx", fp.Fingerprint): nil})
	if _, err := srv.AddKey(ctx, KeyInput{Exchange: "okx", Name: "main", APIKey: "K2", Secret: []byte("s2"), Passphrase: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	if c, err := srv.Credential(ctx, "okx", "main"); err != nil || c.APIKey != "K2" {
		t.Fatalf("Credential() of the key added again = %v", err)
	}
	b, _ := st.Get(ctx, secretKey(exchangeKind, "okx/main"))
	if ver, _ := recordVersion(b); ver != 2 {
		t.Errorf("version of a key added again = %d, want 2", ver)
	}
}

func TestSecurity_V7_ManifestBuiltOnUpgrade(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v, logs := initVault(t, st)
	for _, s := range []string{"one", "two"} {
		if err := v.PutSecret(ctx, "s", "x", []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Make the store look like one written before the manifest: a
	// version 1 keyring and no manifest.
	v.mu.Lock()
	v.ring.legacy = true
	blob, err := v.ring.seal(v.root.Bytes())
	v.ring.legacy = false
	v.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	putBack(t, st, map[string][]byte{keyringKey: blob, versionsKey: nil})
	v.Seal()

	up := openVault(t, st, logs)
	if err := up.Unseal(ctx, passphrase); err != nil {
		t.Fatalf("Unseal() of a vault without a manifest = %v", err)
	}
	if got, err := up.Secret(ctx, "s", "x"); err != nil || string(got) != "two" {
		t.Fatalf("Secret() after the upgrade = %q, %v, want two", got, err)
	}
	if !strings.Contains(logs.String(), "version manifest built") {
		t.Error("building the manifest was not logged")
	}
	stored, _ := st.Get(ctx, keyringKey)
	up.mu.RLock()
	ring, err := openKeyring(up.root.Bytes(), stored)
	up.mu.RUnlock()
	if err != nil || ring.legacy {
		t.Fatalf("stored keyring after the upgrade: legacy %v, %v, want version 2", ring != nil && ring.legacy, err)
	}
	ring.destroy()
	// From now on the manifest pins versions.
	before := rows(t, st, secretKey("s", "x"))
	if err := up.PutSecret(ctx, "s", "x", []byte("three")); err != nil {
		t.Fatal(err)
	}
	putBack(t, st, before)
	_, err = up.Secret(ctx, "s", "x")
	wantRollback(t, "Secret() rolled back after the upgrade", err, "s x")
}

func TestManifestEncoding(t *testing.T) {
	m := &manifest{Generation: 7, Records: map[string]versionEntry{
		"client-secret/binance/kwc_1": {Version: 3},
		"exchange-key/okx/main":       {Version: 9, Deleted: true},
		"s/x":                         {Version: 1},
	}}
	b, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalManifest(b)
	if err != nil {
		t.Fatalf("unmarshalManifest(marshal()) = %v", err)
	}
	if got.Generation != m.Generation || len(got.Records) != len(m.Records) {
		t.Fatalf("round trip = %+v, want %+v", got, m)
	}
	for k, e := range m.Records {
		if got.Records[k] != e {
			t.Errorf("round trip %s = %+v, want %+v", k, got.Records[k], e)
		}
	}
	again, _ := got.marshal()
	if !bytes.Equal(again, b) {
		t.Error("encoding is not deterministic")
	}
	for _, bad := range [][]byte{nil, b[:11], b[:len(b)-1], append(bytes.Clone(b), 0), flip(b, len(b)-1)} {
		if _, err := unmarshalManifest(bad); err == nil {
			t.Errorf("unmarshalManifest(% x) = nil error, want one", bad)
		}
	}
}
