package vault

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/keywarden/keywarden/internal/store"
)

// Rollback protection (security.md T8, V7). A sealed record binds its own
// version, so a ciphertext put back under another version fails to open;
// but an older, validly sealed row of the same secret (a restore of that
// row, or someone with write access to the database replaying a copy)
// carries its old version and opens. The vault therefore keeps a version
// manifest: the current version of every sealed record (and a tombstone
// for each deleted one) and a generation counter. Every write of a sealed
// record updates it in the same transaction, and every read requires the
// record's version to be the one the manifest holds.
//
// The manifest is sharded so that neither costs in proportion to all the
// records. Each record name falls in one of manifestShards shards (FNV-1a
// of the name); a shard is a store record under versionsShardPrefix
// listing its names' versions. The head, versionsKey, holds the
// generation and the SHA-256 of every shard, authenticated with a MAC
// under a key derived from the root key. A write rewrites the head and
// the one shard its record falls in. A read fetches only the head: when it
// is the one this vault verified last, the cached manifest answers; when
// it changed (another replica wrote), the MAC is checked, the generation
// must not have gone down, and only the shards whose hash changed are
// fetched and checked against the head.
//
// So a row rolled back on its own, or with its metadata, is refused: the
// attacker cannot forge the head, a shard that does not hash to what the
// head says is refused as tampered with, and putting back an older head
// as well rolls back every record written since, which a running vault
// sees because the generation went down (it remembers the highest
// generation it verified). What the database alone cannot show is a
// restore of the whole vault state (all rows, manifest included) to an
// earlier consistent snapshot, seen by a process that never saw a later
// generation: docs/vault.md says so.
//
// Vaults written before the sharding keep the whole manifest in the single
// record versionsKey (format "kwv1" below, keyring version 2); the first
// unseal converts it and marks the keyring (version 3) so that a
// single-record manifest put back later is refused.

// versionsKey holds the manifest's head (or, in a vault not yet upgraded,
// the whole single-record manifest).
const versionsKey = "vault/versions"

// versionsShardPrefix is followed by a shard's number in two hex digits.
const versionsShardPrefix = "vault/versions/"

// manifestShards is how many shards the manifest has. A write rewrites
// about 1/manifestShards of the manifest plus a head of 32 bytes per shard.
const manifestShards = 64

// A stored head is
//
//	magic "kwh1" | HMAC-SHA256 tag(32) | generation(8) | shards(2) |
//	shards × SHA-256 of the stored shard (32; zero for a shard never written)
//
// and the tag covers everything else. A stored shard is
//
//	magic "kws1" | shard(2) | count(4) | count × entry
//
// with an entry as in the single-record manifest and names in ascending
// order, every one falling in that shard.
const (
	headMagic  = "kwh1"
	shardMagic = "kws1"
	headSize   = len(headMagic) + sha256.Size + 8 + 2 + manifestShards*sha256.Size
)

// A stored single-record manifest (before the sharding) is
//
//	magic "kwv1" | HMAC-SHA256 tag(32) | generation(8) | count(4) |
//	count × (name length(2) | name "kind/id" | version(8) | deleted(1))
//
// with names in ascending order; the tag covers everything else.
const manifestMagic = "kwv1"

// marshal encodes m's body (generation and entries).
func (m *manifest) marshal() ([]byte, error) {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+entriesSize(m.Records)), m.Generation)
	return appendEntries(b, m.Records)
}

// unmarshalManifest decodes a body written by marshal.
func unmarshalManifest(b []byte) (*manifest, error) {
	if len(b) < 8 {
		return nil, errBadEncoding
	}
	recs, err := decodeEntries(b[8:], -1)
	if err != nil {
		return nil, err
	}
	return &manifest{Generation: binary.BigEndian.Uint64(b), Records: recs}, nil
}

var errBadEncoding = errors.New("bad encoding")

// entriesSize is the encoded size of records.
func entriesSize(records map[string]versionEntry) int {
	size := 4
	for name := range records {
		size += 2 + len(name) + 9
	}
	return size
}

// appendEntries appends count | entries, names in ascending order.
func appendEntries(b []byte, records map[string]versionEntry) ([]byte, error) {
	names := make([]string, 0, len(records))
	for name := range records {
		if len(name) > 0xffff {
			return nil, errors.New("version manifest: record name too long")
		}
		names = append(names, name)
	}
	slices.Sort(names)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, name := range names {
		e := records[name]
		b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint64(b, e.Version)
		if e.Deleted {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b, nil
}

// decodeEntries decodes what appendEntries wrote, which must fill b. With
// shard >= 0, every name must fall in that shard.
func decodeEntries(b []byte, shard int) (map[string]versionEntry, error) {
	if len(b) < 4 {
		return nil, errBadEncoding
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b))/11 {
		return nil, errBadEncoding
	}
	recs := make(map[string]versionEntry, n)
	var prev string
	for range n {
		if len(b) < 2 {
			return nil, errBadEncoding
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l+9 || b[2+l+8] > 1 {
			return nil, errBadEncoding
		}
		name := string(b[2 : 2+l])
		if len(recs) > 0 && name <= prev {
			return nil, errBadEncoding // out of order or repeated
		}
		if shard >= 0 && shardOf(name) != shard {
			return nil, errBadEncoding
		}
		prev = name
		recs[name] = versionEntry{Version: binary.BigEndian.Uint64(b[2+l:]), Deleted: b[2+l+8] == 1}
		b = b[2+l+9:]
	}
	if len(b) != 0 {
		return nil, errBadEncoding
	}
	return recs, nil
}

// shardOf returns the shard a record name falls in (FNV-1a, 32 bits).
func shardOf(name string) int {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h % manifestShards)
}

// shardKeys are the shards' store keys.
var shardKeys = func() (k [manifestShards]string) {
	for i := range k {
		k[i] = fmt.Sprintf("%s%02x", versionsShardPrefix, i)
	}
	return k
}()

// encodeShard returns the stored form of shard i holding records.
func encodeShard(i int, records map[string]versionEntry) ([]byte, error) {
	b := make([]byte, 0, len(shardMagic)+2+entriesSize(records))
	b = append(b, shardMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(i))
	return appendEntries(b, records)
}

// decodeShard decodes a stored shard, returning its number.
func decodeShard(b []byte) (int, map[string]versionEntry, error) {
	if len(b) < len(shardMagic)+2 || string(b[:len(shardMagic)]) != shardMagic {
		return 0, nil, errBadEncoding
	}
	i := int(binary.BigEndian.Uint16(b[len(shardMagic):]))
	if i >= manifestShards {
		return 0, nil, errBadEncoding
	}
	recs, err := decodeEntries(b[len(shardMagic)+2:], i)
	if err != nil {
		return 0, nil, err
	}
	return i, recs, nil
}

// marshalHead encodes a head's body: generation, shard count and hashes.
func marshalHead(t *versionTable) []byte {
	b := make([]byte, 0, headSize-len(headMagic)-sha256.Size)
	b = binary.BigEndian.AppendUint64(b, t.Generation)
	b = binary.BigEndian.AppendUint16(b, manifestShards)
	for _, h := range t.hashes {
		b = append(b, h[:]...)
	}
	return b
}

// unmarshalHead decodes a body written by marshalHead into a table
// without shards.
func unmarshalHead(b []byte) (*versionTable, error) {
	if len(b) != headSize-len(headMagic)-sha256.Size || binary.BigEndian.Uint16(b[8:]) != manifestShards {
		return nil, errBadEncoding
	}
	t := &versionTable{Generation: binary.BigEndian.Uint64(b)}
	for i := range t.hashes {
		copy(t.hashes[i][:], b[10+i*sha256.Size:])
	}
	return t, nil
}

// ErrRollback is matched by every refusal of a sealed record, or of the
// version manifest, that is older than the vault's record of it (a
// rollback or a resurrected deleted secret). Such an error also matches
// ErrTampered, so callers that fail closed on tampering keep doing so;
// callers that alert can tell a rollback apart with errors.Is or
// errors.As(*RollbackError).
var ErrRollback = errors.New("sealed record rolled back to an older version")

// RollbackError names the refused record and the versions involved. It
// holds nothing secret.
type RollbackError struct {
	// Record is "kind id" of the sealed record, or the store key of the
	// manifest.
	Record string
	// Stored is the version found in the store, Want the version the
	// vault's record says is current (0 when it has none).
	Stored, Want uint64
	// Reason says what was found.
	Reason string
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("%s: %s (stored version %d, current version %d): %v", e.Record, e.Reason, e.Stored, e.Want, ErrRollback)
}

// Unwrap makes a RollbackError match ErrRollback and ErrTampered.
func (e *RollbackError) Unwrap() []error { return []error{ErrRollback, ErrTampered} }

// manifest is a decoded single-record manifest (the format before the
// sharding), read only to convert it.
type manifest struct {
	Generation uint64
	// Records maps "kind/id" to the record's current version.
	Records map[string]versionEntry
}

type versionEntry struct {
	Version uint64
	Deleted bool
}

// versionTable is the verified, decoded manifest: the head's generation
// and shard hashes, and each shard's entries ("kind/id" to version; nil
// for a shard never written). A table in the cache is shared and never
// changed: clone and set make copies.
type versionTable struct {
	Generation uint64
	hashes     [manifestShards][sha256.Size]byte
	shards     [manifestShards]map[string]versionEntry
}

func manifestName(kind, id string) string { return kind + "/" + id }

// entry returns the manifest's entry for a record name.
func (t *versionTable) entry(name string) (versionEntry, bool) {
	e, ok := t.shards[shardOf(name)][name]
	return e, ok
}

// clone copies the table, sharing its shards.
func (t *versionTable) clone() *versionTable {
	c := *t
	return &c
}

// set gives name the entry e in a copy of its shard and returns the
// shard's number; the shard's hash is left for the caller to update.
func (t *versionTable) set(name string, e versionEntry) int {
	i := shardOf(name)
	m := make(map[string]versionEntry, len(t.shards[i])+1)
	maps.Copy(m, t.shards[i])
	m[name] = e
	t.shards[i] = m
	return i
}

// records returns a copy of every entry.
func (t *versionTable) records() map[string]versionEntry {
	n := 0
	for _, s := range t.shards {
		n += len(s)
	}
	out := make(map[string]versionEntry, n)
	for _, s := range t.shards {
		maps.Copy(out, s)
	}
	return out
}

// buildTable returns the table of generation gen holding records, and
// each shard's stored form (nil for an empty shard).
func buildTable(gen uint64, records map[string]versionEntry) (*versionTable, [manifestShards][]byte, error) {
	t := &versionTable{Generation: gen}
	var stored [manifestShards][]byte
	for name, e := range records {
		i := shardOf(name)
		if t.shards[i] == nil {
			t.shards[i] = map[string]versionEntry{}
		}
		t.shards[i][name] = e
	}
	for i, recs := range t.shards {
		if recs == nil {
			continue
		}
		b, err := encodeShard(i, recs)
		if err != nil {
			return nil, stored, err
		}
		stored[i], t.hashes[i] = b, sha256.Sum256(b)
	}
	return t, stored, nil
}

// manifestKey derives the manifest's MAC key from the root key.
func manifestKey(root []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, root, nil, "keywarden version manifest v1", 32)
}

// macWith returns the manifest MAC of magic | body under root.
func macWith(root []byte, magic string, body []byte) ([]byte, error) {
	key, err := manifestKey(root)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(magic))
	mac.Write(body)
	return mac.Sum(nil), nil
}

// encodeManifest returns the stored form of a single-record manifest m,
// authenticated under root (what keywarden wrote before the sharding).
func encodeManifest(root []byte, m *manifest) ([]byte, error) {
	body, err := m.marshal()
	if err != nil {
		return nil, err
	}
	return sealMACed(root, manifestMagic, body)
}

// encodeHead returns the stored form of t's head, authenticated under
// root.
func encodeHead(root []byte, t *versionTable) ([]byte, error) {
	return sealMACed(root, headMagic, marshalHead(t))
}

func sealMACed(root []byte, magic string, body []byte) ([]byte, error) {
	tag, err := macWith(root, magic, body)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(magic)+len(tag)+len(body))
	out = append(out, magic...)
	out = append(out, tag...)
	return append(out, body...), nil
}

// openMACed checks raw's magic and MAC under root and returns its body.
func openMACed(root []byte, magic string, raw []byte) ([]byte, error) {
	head := len(magic) + sha256.Size
	if len(raw) < head || string(raw[:len(magic)]) != magic {
		return nil, errBadEncoding
	}
	tag, err := macWith(root, magic, raw[head:])
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(tag, raw[len(magic):head]) {
		return nil, errBadEncoding
	}
	return raw[head:], nil
}

// errManifestMissing is returned by loadManifest when the store has none.
var errManifestMissing = errors.New("version manifest missing")

// errManifestSingle is returned by loadManifest when the store holds a
// single-record manifest: the unseal converts it, anything else refuses.
var errManifestSingle = errors.New("version manifest in the single-record format")

// errShardMismatch means a shard is not the one the head names: tampered
// with, or written by another process between the two reads.
var errShardMismatch = errors.New("version manifest shard does not match the head")

// loadManifest reads and verifies the manifest through get (the store or a
// transaction): the head, and the shards whose hash differs from the last
// verified table's. A head whose generation is below the highest this
// vault has verified is refused as a rollback. A shard that does not match
// the head is read again (a write may have committed between the reads),
// then refused as tampered with. The result is shared with the cache and
// must not be changed (clone it). v.mu is held.
func (v *Vault) loadManifest(ctx context.Context, get func(context.Context, string) ([]byte, error)) (*versionTable, error) {
	const tries = 3
	for try := 1; ; try++ {
		t, err := v.loadManifestOnce(ctx, get)
		if !errors.Is(err, errShardMismatch) {
			return t, err
		}
		if try == tries {
			v.log.Error("version manifest shard does not match its head")
			return nil, fmt.Errorf("version manifest: %w", ErrTampered)
		}
	}
}

func (v *Vault) loadManifestOnce(ctx context.Context, get func(context.Context, string) ([]byte, error)) (*versionTable, error) {
	raw, err := get(ctx, versionsKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errManifestMissing
	}
	if err != nil {
		return nil, err
	}
	v.verMu.Lock()
	if v.verRaw != nil && bytes.Equal(raw, v.verRaw) {
		t := v.verMan
		v.verMu.Unlock()
		return t, nil
	}
	if v.pendRaw != nil && bytes.Equal(raw, v.pendRaw) {
		// The manifest this vault wrote last, committed: no need
		// to verify and decode it again.
		t := v.pendMan
		defer v.verMu.Unlock()
		return v.adoptLocked(raw, t)
	}
	base, seen := v.verMan, v.verGen
	v.verMu.Unlock()
	if bytes.HasPrefix(raw, []byte(manifestMagic)) {
		return nil, errManifestSingle
	}
	body, err := openMACed(v.root.Bytes(), headMagic, raw)
	if err != nil {
		v.log.Error("version manifest failed authentication")
		return nil, fmt.Errorf("version manifest: %w", ErrTampered)
	}
	t, err := unmarshalHead(body)
	if err != nil {
		v.log.Error("version manifest failed to decode")
		return nil, fmt.Errorf("version manifest: %w", ErrTampered)
	}
	if t.Generation < seen {
		return nil, v.rolledBack(t.Generation, seen)
	}
	for i, h := range t.hashes {
		switch {
		case h == [sha256.Size]byte{}:
			// Never written.
		case base != nil && base.hashes[i] == h:
			t.shards[i] = base.shards[i]
		default:
			b, err := get(ctx, shardKeys[i])
			if errors.Is(err, store.ErrNotFound) {
				return nil, errShardMismatch
			}
			if err != nil {
				return nil, err
			}
			if sum := sha256.Sum256(b); !hmac.Equal(sum[:], h[:]) {
				return nil, errShardMismatch
			}
			n, recs, err := decodeShard(b)
			if err != nil || n != i {
				v.log.Error("version manifest failed to decode", "shard", shardKeys[i])
				return nil, fmt.Errorf("version manifest: %w", ErrTampered)
			}
			t.shards[i] = recs
		}
	}
	v.verMu.Lock()
	defer v.verMu.Unlock()
	return v.adoptLocked(raw, t)
}

// adoptLocked caches the verified table t whose head is stored as raw,
// unless its generation is below the highest seen: then it is a rollback.
// v.verMu is held.
func (v *Vault) adoptLocked(raw []byte, t *versionTable) (*versionTable, error) {
	if t.Generation < v.verGen {
		return nil, v.rolledBack(t.Generation, v.verGen)
	}
	v.verGen = t.Generation
	v.verRaw, v.verMan = raw, t
	return t, nil
}

func (v *Vault) rolledBack(gen, seen uint64) error {
	v.log.Error("version manifest rolled back", "generation", gen, "seen_generation", seen)
	return &RollbackError{Record: versionsKey, Stored: gen, Want: seen, Reason: "the version manifest went back to an older generation"}
}

// missingManifest turns errManifestMissing into the refusal a read or
// write gets: on a vault whose keyring requires a manifest, its absence
// means it was deleted. A single-record manifest found after the unseal
// converted it was put back.
func (v *Vault) missingManifest(err error) error {
	if errors.Is(err, errManifestMissing) {
		v.log.Error("version manifest missing from the store")
		return &RollbackError{Record: versionsKey, Reason: "the version manifest is missing"}
	}
	if errors.Is(err, errManifestSingle) {
		v.log.Error("version manifest put back in the single-record format")
		return &RollbackError{Record: versionsKey, Reason: "the version manifest went back to the format of an earlier keywarden"}
	}
	return err
}

// nextVersion returns the version a new write of (kind, id) gets, in tx:
// one above both the manifest's and the stored row's (a deleted record's
// tombstone keeps its number, so a re-created record never reuses one).
func nextVersion(m *versionTable, kind, id string, stored uint64) uint64 {
	e, _ := m.entry(manifestName(kind, id))
	return max(e.Version, stored) + 1
}

// recordVersionTx writes in tx the shard of (kind, id) with its version
// set (or deleted, keeping a tombstone) and a head of the next generation
// naming that shard's new hash. v.mu is held.
func (v *Vault) recordVersionTx(ctx context.Context, tx store.Tx, m *versionTable, kind, id string, version uint64, deleted bool) error {
	t := m.clone()
	t.Generation++
	i := t.set(manifestName(kind, id), versionEntry{Version: version, Deleted: deleted})
	shard, err := encodeShard(i, t.shards[i])
	if err != nil {
		return err
	}
	t.hashes[i] = sha256.Sum256(shard)
	if err := tx.Put(ctx, shardKeys[i], shard); err != nil {
		return err
	}
	return v.putHeadTx(ctx, tx, t)
}

// putHeadTx writes t's head in tx and keeps it as the manifest this vault
// wrote last (adopted without verifying it again once committed).
func (v *Vault) putHeadTx(ctx context.Context, tx store.Tx, t *versionTable) error {
	head, err := encodeHead(v.root.Bytes(), t)
	if err != nil {
		return err
	}
	v.verMu.Lock()
	v.pendRaw, v.pendMan = head, t
	v.verMu.Unlock()
	return tx.Put(ctx, versionsKey, head)
}

// writeVersion loads the manifest in tx, picks (kind, id)'s next version
// above stored, records it and returns it. v.mu is held.
func (v *Vault) writeVersion(ctx context.Context, tx store.Tx, kind, id string, stored uint64) (uint64, error) {
	m, err := v.loadManifest(ctx, tx.Get)
	if err != nil {
		return 0, v.missingManifest(err)
	}
	next := nextVersion(m, kind, id, stored)
	return next, v.recordVersionTx(ctx, tx, m, kind, id, next, false)
}

// deleteVersion marks (kind, id) deleted in the manifest, in tx. v.mu is
// held.
func (v *Vault) deleteVersion(ctx context.Context, tx store.Tx, kind, id string) error {
	m, err := v.loadManifest(ctx, tx.Get)
	if err != nil {
		return v.missingManifest(err)
	}
	e, _ := m.entry(manifestName(kind, id))
	return v.recordVersionTx(ctx, tx, m, kind, id, e.Version, true)
}

// checkVersion refuses a sealed record of (kind, id) that opened with
// version unless the manifest holds exactly that version. v.mu is held.
func (v *Vault) checkVersion(ctx context.Context, kind, id string, version uint64) error {
	m, err := v.loadManifest(ctx, v.store.Get)
	if err != nil {
		return v.missingManifest(err)
	}
	e, ok := m.entry(manifestName(kind, id))
	var reason string
	switch {
	case !ok:
		reason = "the record was never written by this vault"
	case e.Deleted:
		reason = "the record was deleted"
	case version < e.Version:
		reason = "an older version of the record was put back"
	case version != e.Version:
		reason = "the record's version is not the current one"
	default:
		return nil
	}
	v.log.Error("sealed record rolled back", "kind", kind, "id", id, "stored_version", version, "current_version", e.Version, "reason", reason)
	return &RollbackError{Record: kind + " " + id, Stored: version, Want: e.Version, Reason: reason}
}

// openChecked reads (kind, id)'s sealed record through read and opens it,
// then checks its version against the manifest. A mismatch is read again
// (a bounded number of times): a write that committed between the two
// reads is not a rollback. read returns the blob; it may also change what
// the caller checks (the exchange key's metadata). v.mu is held.
func (v *Vault) openChecked(ctx context.Context, kind, id string, read func() ([]byte, error)) ([]byte, uint64, error) {
	const tries = 3
	var lastErr error
	for range tries {
		blob, err := read()
		if err != nil {
			return nil, 0, err
		}
		pt, version, err := openRecord(v.ring, kind, id, blob)
		if err != nil {
			return nil, 0, v.tampered(kind, id)
		}
		if lastErr = v.checkVersion(ctx, kind, id, version); lastErr == nil {
			return pt, version, nil
		}
		clear(pt)
		if !errors.As(lastErr, new(*RollbackError)) {
			return nil, 0, lastErr
		}
	}
	return nil, 0, lastErr
}

// ensureManifest runs at unseal. A vault whose keyring predates the
// manifest gets one built from the stored records' versions; a vault
// with a single-record manifest gets it converted to shards. Either way
// the keyring is rewritten (version 3) to say a sharded manifest is
// required; from then on a missing manifest, or a single-record one, is
// refused at every read. A manifest entry whose record is gone (an
// exchange key removed while the vault was sealed) becomes a tombstone.
// v.mu is held for writing.
func (v *Vault) ensureManifest(ctx context.Context) error {
	var built, converted, buried int
	// fix checks through s and writes only with a transaction (s is tx);
	// without one it returns errNeedWrite when something is to write, so
	// that an unseal that changes nothing writes nothing.
	errNeedWrite := errors.New("version manifest needs writing")
	fix := func(s store.Store, tx store.Tx) error {
		built, converted, buried = 0, 0, 0
		rows, err := s.List(ctx, secretPrefix)
		if err != nil {
			return err
		}
		t, err := v.loadManifest(ctx, s.Get)
		if err == nil {
			have := make(map[string]bool, len(rows))
			for _, row := range rows {
				have[strings.TrimPrefix(row, secretPrefix)] = true
			}
			for _, shard := range t.shards {
				for name, e := range shard {
					if !e.Deleted && !have[name] {
						buried++
					}
				}
			}
			// A keyring of an older version beside a sharded
			// manifest (put back from before the upgrade) is
			// rewritten too.
			oldRing := v.ring.legacy || v.ring.single
			if buried == 0 && !oldRing {
				return nil
			}
			if tx == nil {
				return errNeedWrite
			}
			if buried > 0 {
				recs := t.records()
				for name, e := range recs {
					if !e.Deleted && !have[name] {
						recs[name] = versionEntry{Version: e.Version, Deleted: true}
					}
				}
				if err := v.putTable(ctx, tx, t, t.Generation+1, recs); err != nil {
					return err
				}
			}
			if oldRing {
				return v.upgradeKeyringTx(ctx, tx)
			}
			return nil
		}
		single := errors.Is(err, errManifestSingle)
		if !single && !errors.Is(err, errManifestMissing) {
			return err
		}
		cur, err := s.Get(ctx, keyringKey)
		if err != nil {
			return err
		}
		stored, err := openKeyring(v.root.Bytes(), cur)
		if err != nil {
			return fmt.Errorf("stored keyring: %w", ErrTampered)
		}
		legacy, singleRing := stored.legacy, stored.single
		stored.destroy()
		if single && !legacy && !singleRing || !single && !legacy {
			// Reads and writes refuse (missingManifest); the
			// unseal itself goes on so that status and verify
			// can report it.
			v.log.Error("version manifest missing from the store, or put back in an earlier format; every sealed record is refused")
			return nil
		}
		if single {
			raw, err := s.Get(ctx, versionsKey)
			if err != nil {
				return err
			}
			body, err := openMACed(v.root.Bytes(), manifestMagic, raw)
			if err != nil {
				v.log.Error("version manifest failed authentication")
				return fmt.Errorf("version manifest: %w", ErrTampered)
			}
			m, err := unmarshalManifest(body)
			if err != nil {
				v.log.Error("version manifest failed to decode")
				return fmt.Errorf("version manifest: %w", ErrTampered)
			}
			if seen := v.VersionGeneration(); m.Generation < seen {
				return v.rolledBack(m.Generation, seen)
			}
			if tx == nil {
				return errNeedWrite
			}
			if err := v.putTable(ctx, tx, nil, m.Generation+1, m.Records); err != nil {
				return err
			}
			converted = len(m.Records) + 1
			return v.upgradeKeyringTx(ctx, tx)
		}
		if tx == nil {
			return errNeedWrite
		}
		recs := map[string]versionEntry{}
		for _, row := range rows {
			b, err := tx.Get(ctx, row)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			ver, ok := recordVersion(b)
			if !ok {
				continue // refused when read: it does not open
			}
			recs[strings.TrimPrefix(row, secretPrefix)] = versionEntry{Version: ver}
		}
		if err := v.putTable(ctx, tx, nil, 1, recs); err != nil {
			return err
		}
		built = len(recs) + 1
		return v.upgradeKeyringTx(ctx, tx)
	}
	err := fix(v.store, nil)
	if errors.Is(err, errNeedWrite) {
		err = v.tx.Update(ctx, func(tx store.Tx) error { return fix(tx, tx) })
	}
	if err != nil {
		return fmt.Errorf("version manifest: %w", err)
	}
	if built+converted+buried > 0 {
		// Adopt what was written (the unseal logs its generation).
		if _, err := v.loadManifest(ctx, v.store.Get); err != nil {
			return fmt.Errorf("version manifest: %w", v.missingManifest(err))
		}
	}
	v.ring.legacy, v.ring.single = false, false
	if built > 0 {
		v.log.Warn("version manifest built from the stored records' versions: rollback protection starts now", "records", built-1)
	}
	if converted > 0 {
		v.log.Info("version manifest converted to shards", "records", converted-1, "shards", manifestShards)
	}
	if buried > 0 {
		v.log.Info("version manifest: records removed while sealed are marked deleted", "records", buried)
	}
	return nil
}

// putTable writes in tx the manifest of generation gen holding records:
// every shard that differs from old's (all of them when old is nil) and
// the head. v.mu is held.
func (v *Vault) putTable(ctx context.Context, tx store.Tx, old *versionTable, gen uint64, records map[string]versionEntry) error {
	t, shards, err := buildTable(gen, records)
	if err != nil {
		return err
	}
	for i, b := range shards {
		if b == nil || old != nil && old.hashes[i] == t.hashes[i] {
			continue
		}
		if err := tx.Put(ctx, shardKeys[i], b); err != nil {
			return err
		}
	}
	return v.putHeadTx(ctx, tx, t)
}

// upgradeKeyringTx reseals the stored keyring (another replica may have
// rotated it) as the current version, in tx: a sharded manifest is
// required from now on. v.mu is held.
func (v *Vault) upgradeKeyringTx(ctx context.Context, tx store.Tx) error {
	cur, err := tx.Get(ctx, keyringKey)
	if err != nil {
		return err
	}
	stored, err := openKeyring(v.root.Bytes(), cur)
	if err != nil {
		return fmt.Errorf("stored keyring: %w", ErrTampered)
	}
	defer stored.destroy()
	stored.legacy, stored.single = false, false
	ring, err := stored.seal(v.root.Bytes())
	if err != nil {
		return err
	}
	return tx.Put(ctx, keyringKey, ring)
}

// VersionGeneration returns the highest version-manifest generation this
// vault has verified: it goes up with every write of a sealed record. An
// operator who notes it can tell a restored database by a lower one.
func (v *Vault) VersionGeneration() uint64 {
	v.verMu.Lock()
	defer v.verMu.Unlock()
	return v.verGen
}
