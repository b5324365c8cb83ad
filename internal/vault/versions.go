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
	"slices"
	"strings"

	"github.com/keywarden/keywarden/internal/store"
)

// Rollback protection (security.md T8, V7). A sealed record binds its own
// version, so a ciphertext put back under another version fails to open;
// but an older, validly sealed row of the same secret (a restore of that
// row, or someone with write access to the database replaying a copy)
// carries its old version and opens. The vault therefore keeps a version
// manifest: one store record, versionsKey, holding the current version of
// every sealed record (and a tombstone for each deleted one) and a
// generation counter, authenticated with a MAC under a key derived from the
// root key. Every write of a sealed record updates it in the same
// transaction, and every read requires the record's version to be the one
// the manifest holds.
//
// So a row rolled back on its own, or with its metadata, is refused: the
// attacker cannot forge the manifest, and putting back an older manifest as
// well rolls back every record written since, which a running vault sees
// because the manifest's generation went down (it remembers the highest
// generation it verified). What the database alone cannot show is a
// restore of the whole vault state (all rows, manifest included) to an
// earlier consistent snapshot, seen by a process that never saw a later
// generation: docs/vault.md says so.

// versionsKey holds the version manifest.
const versionsKey = "vault/versions"

// A stored manifest is
//
//	magic "kwv1" | HMAC-SHA256 tag(32) | generation(8) | count(4) |
//	count × (name length(2) | name "kind/id" | version(8) | deleted(1))
//
// with names in ascending order; the tag covers everything else.
const manifestMagic = "kwv1"

// marshal encodes m's body (generation and entries).
func (m *manifest) marshal() ([]byte, error) {
	names := make([]string, 0, len(m.Records))
	size := 12
	for name := range m.Records {
		if len(name) > 0xffff {
			return nil, errors.New("version manifest: record name too long")
		}
		names = append(names, name)
		size += 2 + len(name) + 9
	}
	slices.Sort(names)
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint64(b, m.Generation)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, name := range names {
		e := m.Records[name]
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

// unmarshalManifest decodes a body written by marshal.
func unmarshalManifest(b []byte) (*manifest, error) {
	bad := errors.New("bad encoding")
	if len(b) < 12 {
		return nil, bad
	}
	m := &manifest{Generation: binary.BigEndian.Uint64(b)}
	n := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	if uint64(n) > uint64(len(b))/11 {
		return nil, bad
	}
	m.Records = make(map[string]versionEntry, n)
	var prev string
	for range n {
		if len(b) < 2 {
			return nil, bad
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l+9 || b[2+l+8] > 1 {
			return nil, bad
		}
		name := string(b[2 : 2+l])
		if len(m.Records) > 0 && name <= prev {
			return nil, bad // out of order or repeated
		}
		prev = name
		m.Records[name] = versionEntry{Version: binary.BigEndian.Uint64(b[2+l:]), Deleted: b[2+l+8] == 1}
		b = b[2+l+9:]
	}
	if len(b) != 0 {
		return nil, bad
	}
	return m, nil
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

// manifest is the decoded version manifest.
type manifest struct {
	Generation uint64
	// Records maps "kind/id" to the record's current version.
	Records map[string]versionEntry
}

type versionEntry struct {
	Version uint64
	Deleted bool
}

func manifestName(kind, id string) string { return kind + "/" + id }

// manifestKey derives the manifest's MAC key from the root key.
func manifestKey(root []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, root, nil, "keywarden version manifest v1", 32)
}

// encodeManifest returns the stored form of m, authenticated under root.
func encodeManifest(root []byte, m *manifest) ([]byte, error) {
	body, err := m.marshal()
	if err != nil {
		return nil, err
	}
	key, err := manifestKey(root)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(manifestMagic))
	mac.Write(body)
	out := make([]byte, 0, len(manifestMagic)+sha256.Size+len(body))
	out = append(out, manifestMagic...)
	out = mac.Sum(out)
	return append(out, body...), nil
}

// errManifestMissing is returned by loadManifest when the store has none.
var errManifestMissing = errors.New("version manifest missing")

// loadManifest reads and verifies the manifest through get (the store or a
// transaction). A manifest whose generation is below the highest this
// vault has verified is refused as a rollback. The result is shared with
// the cache and must not be changed (clone it). v.mu is held.
func (v *Vault) loadManifest(ctx context.Context, get func(context.Context, string) ([]byte, error)) (*manifest, error) {
	raw, err := get(ctx, versionsKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errManifestMissing
	}
	if err != nil {
		return nil, err
	}
	v.verMu.Lock()
	if v.verRaw != nil && bytes.Equal(raw, v.verRaw) {
		m := v.verMan
		v.verMu.Unlock()
		return m, nil
	}
	if v.pendRaw != nil && bytes.Equal(raw, v.pendRaw) {
		// The manifest this vault wrote last, committed: no need
		// to verify and decode it again.
		m := v.pendMan
		defer v.verMu.Unlock()
		return v.adoptLocked(raw, m)
	}
	v.verMu.Unlock()
	const head = len(manifestMagic) + sha256.Size
	if len(raw) < head || string(raw[:len(manifestMagic)]) != manifestMagic {
		v.log.Error("version manifest failed authentication")
		return nil, fmt.Errorf("version manifest: %w", ErrTampered)
	}
	key, err := manifestKey(v.root.Bytes())
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	clear(key)
	mac.Write(raw[:len(manifestMagic)])
	mac.Write(raw[head:])
	if !hmac.Equal(mac.Sum(nil), raw[len(manifestMagic):head]) {
		v.log.Error("version manifest failed authentication")
		return nil, fmt.Errorf("version manifest: %w", ErrTampered)
	}
	m, err := unmarshalManifest(raw[head:])
	if err != nil {
		v.log.Error("version manifest failed to decode")
		return nil, fmt.Errorf("version manifest: %w", ErrTampered)
	}
	if m.Records == nil {
		m.Records = map[string]versionEntry{}
	}
	v.verMu.Lock()
	defer v.verMu.Unlock()
	return v.adoptLocked(raw, m)
}

// adoptLocked caches the verified manifest m stored as raw, unless its
// generation is below the highest seen: then it is a rollback. v.verMu is
// held.
func (v *Vault) adoptLocked(raw []byte, m *manifest) (*manifest, error) {
	if m.Generation < v.verGen {
		v.log.Error("version manifest rolled back", "generation", m.Generation, "seen_generation", v.verGen)
		return nil, &RollbackError{Record: versionsKey, Stored: m.Generation, Want: v.verGen, Reason: "the version manifest went back to an older generation"}
	}
	v.verGen = m.Generation
	v.verRaw, v.verMan = raw, m
	return m, nil
}

func (m *manifest) clone() *manifest {
	c := &manifest{Generation: m.Generation, Records: make(map[string]versionEntry, len(m.Records)+1)}
	for k, e := range m.Records {
		c.Records[k] = e
	}
	return c
}

// missingManifest turns errManifestMissing into the refusal a read or
// write gets: on a vault whose keyring requires a manifest, its absence
// means it was deleted.
func (v *Vault) missingManifest(err error) error {
	if errors.Is(err, errManifestMissing) {
		v.log.Error("version manifest missing from the store")
		return &RollbackError{Record: versionsKey, Reason: "the version manifest is missing"}
	}
	return err
}

// nextVersion returns the version a new write of (kind, id) gets, in tx:
// one above both the manifest's and the stored row's (a deleted record's
// tombstone keeps its number, so a re-created record never reuses one).
func nextVersion(m *manifest, kind, id string, stored uint64) uint64 {
	return max(m.Records[manifestName(kind, id)].Version, stored) + 1
}

// recordVersionTx writes in tx a copy of the manifest m with (kind, id) set
// to version (or deleted, keeping a tombstone) and the next generation.
// v.mu is held.
func (v *Vault) recordVersionTx(ctx context.Context, tx store.Tx, m *manifest, kind, id string, version uint64, deleted bool) error {
	m = m.clone()
	m.Generation++
	m.Records[manifestName(kind, id)] = versionEntry{Version: version, Deleted: deleted}
	b, err := encodeManifest(v.root.Bytes(), m)
	if err != nil {
		return err
	}
	v.verMu.Lock()
	v.pendRaw, v.pendMan = b, m
	v.verMu.Unlock()
	return tx.Put(ctx, versionsKey, b)
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
	e := m.Records[manifestName(kind, id)]
	return v.recordVersionTx(ctx, tx, m, kind, id, e.Version, true)
}

// checkVersion refuses a sealed record of (kind, id) that opened with
// version unless the manifest holds exactly that version. v.mu is held.
func (v *Vault) checkVersion(ctx context.Context, kind, id string, version uint64) error {
	m, err := v.loadManifest(ctx, v.store.Get)
	if err != nil {
		return v.missingManifest(err)
	}
	e, ok := m.Records[manifestName(kind, id)]
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
// manifest gets one built from the stored records' versions, and its
// keyring rewritten to say a manifest is required; from then on a missing
// manifest is refused at every read. A manifest entry whose record is gone
// (an exchange key removed while the vault was sealed) becomes a
// tombstone. v.mu is held for writing.
func (v *Vault) ensureManifest(ctx context.Context) error {
	var built, buried int
	// fix checks through s and writes only with a transaction (s is tx);
	// without one it returns errNeedWrite when something is to write, so
	// that an unseal that changes nothing writes nothing.
	errNeedWrite := errors.New("version manifest needs writing")
	fix := func(s store.Store, tx store.Tx) error {
		built, buried = 0, 0
		rows, err := s.List(ctx, secretPrefix)
		if err != nil {
			return err
		}
		m, err := v.loadManifest(ctx, s.Get)
		if err == nil {
			m = m.clone()
			have := make(map[string]bool, len(rows))
			for _, row := range rows {
				have[strings.TrimPrefix(row, secretPrefix)] = true
			}
			for name, e := range m.Records {
				if !e.Deleted && !have[name] {
					m.Records[name] = versionEntry{Version: e.Version, Deleted: true}
					buried++
				}
			}
			if buried == 0 {
				return nil
			}
			if tx == nil {
				return errNeedWrite
			}
			m.Generation++
			b, err := encodeManifest(v.root.Bytes(), m)
			if err != nil {
				return err
			}
			return tx.Put(ctx, versionsKey, b)
		}
		if !errors.Is(err, errManifestMissing) {
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
		defer stored.destroy()
		if !stored.legacy {
			// Reads and writes refuse (missingManifest); the
			// unseal itself goes on so that status and verify
			// can report it.
			v.log.Error("version manifest missing from the store; every sealed record is refused")
			return nil
		}
		if tx == nil {
			return errNeedWrite
		}
		m = &manifest{Generation: 1, Records: map[string]versionEntry{}}
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
			m.Records[strings.TrimPrefix(row, secretPrefix)] = versionEntry{Version: ver}
		}
		b, err := encodeManifest(v.root.Bytes(), m)
		if err != nil {
			return err
		}
		if err := tx.Put(ctx, versionsKey, b); err != nil {
			return err
		}
		// Reseal the stored keyring (another replica may have rotated
		// it) as version 2: a manifest is required from now on.
		stored.legacy = false
		ring, err := stored.seal(v.root.Bytes())
		if err != nil {
			return err
		}
		built = len(m.Records) + 1
		return tx.Put(ctx, keyringKey, ring)
	}
	err := fix(v.store, nil)
	if errors.Is(err, errNeedWrite) {
		err = v.tx.Update(ctx, func(tx store.Tx) error { return fix(tx, tx) })
	}
	if err != nil {
		return fmt.Errorf("version manifest: %w", err)
	}
	if built > 0 {
		v.ring.legacy = false
		v.log.Warn("version manifest built from the stored records' versions: rollback protection starts now", "records", built-1)
	}
	if buried > 0 {
		v.log.Info("version manifest: records removed while sealed are marked deleted", "records", buried)
	}
	return nil
}

// VersionGeneration returns the highest version-manifest generation this
// vault has verified: it goes up with every write of a sealed record. An
// operator who notes it can tell a restored database by a lower one.
func (v *Vault) VersionGeneration() uint64 {
	v.verMu.Lock()
	defer v.verMu.Unlock()
	return v.verGen
}
