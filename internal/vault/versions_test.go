package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// countingStore records which keys are read and written, through the
// store and through its transactions.
type countingStore struct {
	*memory.Store
	mu         sync.Mutex
	gets, puts []string
}

func (c *countingStore) note(list *[]string, key string) {
	c.mu.Lock()
	*list = append(*list, key)
	c.mu.Unlock()
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.note(&c.gets, key)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, val []byte) error {
	c.note(&c.puts, key)
	return c.Store.Put(ctx, key, val)
}

func (c *countingStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return c.Store.Update(ctx, func(tx store.Tx) error { return fn(&countingTx{Tx: tx, c: c}) })
}

// reset forgets what was recorded.
func (c *countingStore) reset() {
	c.mu.Lock()
	c.gets, c.puts = nil, nil
	c.mu.Unlock()
}

// shardOps returns the manifest shards read and written since reset.
func (c *countingStore) shardOps() (gets, puts []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pick := func(keys []string) []string {
		var out []string
		for _, k := range keys {
			if strings.HasPrefix(k, versionsShardPrefix) {
				out = append(out, k)
			}
		}
		return out
	}
	return pick(c.gets), pick(c.puts)
}

type countingTx struct {
	store.Tx
	c *countingStore
}

func (t *countingTx) Get(ctx context.Context, key string) ([]byte, error) {
	t.c.note(&t.c.gets, key)
	return t.Tx.Get(ctx, key)
}

func (t *countingTx) Put(ctx context.Context, key string, val []byte) error {
	t.c.note(&t.c.puts, key)
	return t.Tx.Put(ctx, key, val)
}

// TestManifestShardsTouched checks what makes the manifest cheap: a read
// fetches the head and no shard, a write rewrites only its record's shard
// and the head, and a replica that sees a newer head fetches only the
// shard that changed, and refuses one that does not match the head.
func TestManifestShardsTouched(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: memory.New()}
	v, logs := initVault(t, st)
	const n = 300 // enough to fill every shard
	id := func(i int) string { return fmt.Sprintf("binance/kwc_%04d", i) }
	for i := range n {
		if err := v.PutSecret(ctx, "client-secret", id(i), []byte("s")); err != nil {
			t.Fatal(err)
		}
	}
	shard := func(i int) string { return shardKeys[shardOf(manifestName("client-secret", id(i)))] }

	st.reset()
	if _, err := v.Secret(ctx, "client-secret", id(7)); err != nil {
		t.Fatal(err)
	}
	gets, puts := st.shardOps()
	if len(gets)+len(puts) != 0 {
		t.Errorf("Secret() read shards %v and wrote %v, want none", gets, puts)
	}
	if want := []string{secretKey("client-secret", id(7)), versionsKey}; !cmp.Equal(st.gets, want) {
		t.Errorf("Secret() read %v, want %v", st.gets, want)
	}

	st.reset()
	if err := v.PutSecret(ctx, "client-secret", id(8), []byte("s2")); err != nil {
		t.Fatal(err)
	}
	gets, puts = st.shardOps()
	if len(gets) != 0 || !cmp.Equal(puts, []string{shard(8)}) {
		t.Errorf("PutSecret() read shards %v and wrote %v, want none and [%s]", gets, puts, shard(8))
	}

	// A replica: its unseal reads every shard once, then only the one
	// another process changed.
	replica := openVault(t, st, logs)
	if err := replica.Unseal(ctx, passphrase); err != nil {
		t.Fatal(err)
	}
	if err := v.PutSecret(ctx, "client-secret", id(9), []byte("s3")); err != nil {
		t.Fatal(err)
	}
	st.reset()
	if got, err := replica.Secret(ctx, "client-secret", id(9)); err != nil || string(got) != "s3" {
		t.Fatalf("replica Secret() = %q, %v, want the other process's write", got, err)
	}
	if gets, _ = st.shardOps(); !cmp.Equal(gets, []string{shard(9)}) {
		t.Errorf("replica Secret() after a write elsewhere read shards %v, want [%s]", gets, shard(9))
	}
	// Init, n writes and two more: the writer's last generation.
	if g := replica.VersionGeneration(); g != n+3 {
		t.Errorf("replica generation = %d, want %d", g, n+3)
	}

	// A shard put back while the head moved on is refused as tampered
	// with, by a process that has to fetch it.
	old := rows(t, st, shard(10))
	if err := v.PutSecret(ctx, "client-secret", id(10), []byte("s4")); err != nil {
		t.Fatal(err)
	}
	putBack(t, st, old)
	_, err := replica.Secret(ctx, "client-secret", id(10))
	if !errors.Is(err, ErrTampered) || errors.Is(err, ErrRollback) {
		t.Errorf("replica Secret() with a shard put back = %v, want ErrTampered", err)
	}
	noMarker(t, err)
	if !strings.Contains(logs.String(), "shard does not match") {
		t.Error("the mismatched shard was not logged")
	}
	// The process that wrote the head keeps its verified copy.
	if got, err := v.Secret(ctx, "client-secret", id(10)); err != nil || string(got) != "s4" {
		t.Errorf("Secret() by the writer = %q, %v, want s4", got, err)
	}
}

// TestSecurity_V7_SingleRecordManifestConverted upgrades a vault written
// with the single-record manifest (keyring version 2): the unseal converts
// it to shards, keeps every version and the generation going up, and
// from then on a single-record manifest put back is refused.
func TestSecurity_V7_SingleRecordManifestConverted(t *testing.T) {
	for name, newStore := range rollbackStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			v, logs := initVault(t, st)
			for _, w := range [][2]string{{"x", "one"}, {"x", "two"}, {"y", "y1"}} {
				if err := v.PutSecret(ctx, "s", w[0], []byte(w[1])); err != nil {
					t.Fatal(err)
				}
			}
			// The store as the previous keywarden left it: a version
			// 2 keyring, the manifest in one record, no shards.
			v.mu.Lock()
			v.ring.single = true
			ring, err := v.ring.seal(v.root.Bytes())
			v.ring.single = false
			single, err2 := encodeManifest(v.root.Bytes(), &manifest{Generation: 9, Records: map[string]versionEntry{
				"s/x": {Version: 2}, "s/y": {Version: 1}, "s/gone": {Version: 4, Deleted: true},
			}})
			v.mu.Unlock()
			if err != nil || err2 != nil {
				t.Fatal(err, err2)
			}
			old := map[string][]byte{keyringKey: ring, versionsKey: single}
			for _, k := range shardKeys {
				old[k] = nil
			}
			putBack(t, st, old)
			v.Seal()

			up := openVault(t, st, logs)
			if err := up.Unseal(ctx, passphrase); err != nil {
				t.Fatalf("Unseal() of a vault with a single-record manifest = %v", err)
			}
			if !strings.Contains(logs.String(), "version manifest converted to shards") {
				t.Error("the conversion was not logged")
			}
			if g := up.VersionGeneration(); g != 10 {
				t.Errorf("VersionGeneration() after the conversion = %d, want 10", g)
			}
			for id, want := range map[string]string{"x": "two", "y": "y1"} {
				if got, err := up.Secret(ctx, "s", id); err != nil || string(got) != want {
					t.Errorf("Secret(%s) after the conversion = %q, %v, want %q", id, got, err, want)
				}
			}
			head := rows(t, st, versionsKey)[versionsKey]
			if !bytes.HasPrefix(head, []byte(headMagic)) {
				t.Errorf("stored manifest after the conversion starts % x, want %q", head[:4], headMagic)
			}
			stored, _ := st.Get(ctx, keyringKey)
			up.mu.RLock()
			r, err := openKeyring(up.root.Bytes(), stored)
			up.mu.RUnlock()
			if err != nil || r.legacy || r.single {
				t.Fatalf("stored keyring after the conversion: %v, want version 3", err)
			}
			r.destroy()

			// Versions and tombstones carried over: a deleted secret
			// re-created continues its numbers, a rollback is refused.
			if err := up.PutSecret(ctx, "s", "gone", []byte("back")); err != nil {
				t.Fatal(err)
			}
			if b, _ := st.Get(ctx, secretKey("s", "gone")); func() uint64 { ver, _ := recordVersion(b); return ver }() != 5 {
				t.Error("a secret deleted before the conversion did not continue its versions at 5")
			}
			before := rows(t, st, secretKey("s", "x"))
			if err := up.PutSecret(ctx, "s", "x", []byte("three")); err != nil {
				t.Fatal(err)
			}
			putBack(t, st, before)
			_, err = up.Secret(ctx, "s", "x")
			wantRollback(t, "Secret() rolled back after the conversion", err, "s x")

			// The single-record manifest put back is refused, in
			// this process and in a new one (the keyring says the
			// manifest is sharded), and it is not converted again.
			putBack(t, st, map[string][]byte{versionsKey: single})
			_, err = up.Secret(ctx, "s", "y")
			wantRollback(t, "Secret() with the single-record manifest put back", err, versionsKey)
			up.Seal()
			again := openVault(t, st, logs)
			if err := again.Unseal(ctx, passphrase); err != nil {
				t.Fatal(err)
			}
			_, err = again.Secret(ctx, "s", "y")
			wantRollback(t, "Secret() with the single-record manifest put back, new process", err, versionsKey)
			if err := again.PutSecret(ctx, "s", "z", []byte("z")); !errors.Is(err, ErrRollback) {
				t.Errorf("PutSecret() with the single-record manifest put back = %v, want ErrRollback", err)
			}
			if got := rows(t, st, versionsKey)[versionsKey]; !bytes.Equal(got, single) {
				t.Error("a single-record manifest put back after the conversion was converted again")
			}
		})
	}
}

func TestShardEncoding(t *testing.T) {
	recs := map[string]versionEntry{}
	for i := range 200 {
		name := fmt.Sprintf("client-secret/binance/kwc_%d", i)
		if shardOf(name) == 5 {
			recs[name] = versionEntry{Version: uint64(i), Deleted: i%3 == 0}
		}
	}
	if len(recs) < 2 {
		t.Fatalf("only %d names fall in shard 5", len(recs))
	}
	b, err := encodeShard(5, recs)
	if err != nil {
		t.Fatal(err)
	}
	i, got, err := decodeShard(b)
	if err != nil || i != 5 {
		t.Fatalf("decodeShard(encodeShard()) = %d, %v", i, err)
	}
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// The same entries claimed by another shard do not decode.
	other, _ := encodeShard(6, recs)
	outOfRange := slices.Clone(b)
	outOfRange[len(shardMagic)+1] = manifestShards
	for name, bad := range map[string][]byte{
		"empty": nil, "magic only": []byte(shardMagic), "other magic": append([]byte("kwv1"), b[4:]...),
		"truncated": b[:len(b)-1], "trailing byte": append(slices.Clone(b), 0),
		"names of another shard": other, "shard out of range": outOfRange,
	} {
		if _, _, err := decodeShard(bad); err == nil {
			t.Errorf("decodeShard(%s) = nil error, want one", name)
		}
	}

	tab := &versionTable{Generation: 42}
	tab.hashes[3][0], tab.hashes[63][31] = 1, 2
	hb := marshalHead(tab)
	back, err := unmarshalHead(hb)
	if err != nil || back.Generation != 42 || back.hashes != tab.hashes {
		t.Fatalf("unmarshalHead(marshalHead()) = %+v, %v", back, err)
	}
	for name, bad := range map[string][]byte{"empty": nil, "truncated": hb[:len(hb)-1], "trailing byte": append(slices.Clone(hb), 0), "other shard count": flip(hb, 9)} {
		if _, err := unmarshalHead(bad); err == nil {
			t.Errorf("unmarshalHead(%s) = nil error, want one", name)
		}
	}
}
