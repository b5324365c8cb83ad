package client

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/store"
)

// Single-use wrapping (spec/security.md V12). Instead of printing a new
// credential's secret, keywarden can hand out a wrapping token: whoever
// presents it first receives the credential once. The token travels where
// the secret would have (a ticket, a CI variable, a chat message), so a
// copy that is read on the way is useless alone, and is noticed: a second
// unwrap fails, the credential is revoked at once, and the caller raises a
// critical alert (the secret may have been intercepted). An expired token
// is treated the same way: the bot never received the credential, so
// revoking it loses nothing.
//
// Only the SHA-256 of a token is stored; the token itself is shown once.
// Single use holds across replicas: the unwrap is one store transaction.

// Wrapping errors.
var (
	ErrWrapInvalid = errors.New("unknown or malformed wrapping token")
	ErrWrapUsed    = errors.New("wrapping token was already used")
	ErrWrapExpired = errors.New("wrapping token expired")
)

// WrapMisuse is the error of an unwrap that revoked its credential: the
// token was used before, or came too late. Err is ErrWrapUsed or
// ErrWrapExpired.
type WrapMisuse struct {
	Venue, ID string
	Err       error
	Revoked   bool // the credential is revoked (false only if revoking failed)
}

func (e *WrapMisuse) Error() string {
	return fmt.Sprintf("%v: client credential %s/%s revoked", e.Err, e.Venue, e.ID)
}

func (e *WrapMisuse) Unwrap() error { return e.Err }

// Wrapping token shape: a fixed prefix (so scanners recognise it) and 48
// random characters of [A-Za-z0-9] (about 285 bits).
const (
	wrapTokenPrefix = "kwwrap_"
	wrapTokenLen    = len(wrapTokenPrefix) + 48
	wrapPrefix      = "clientwrap/" // store keys; outside prefix on purpose
	// MaxWrapTTL bounds how long a wrapping token lives.
	MaxWrapTTL = 24 * time.Hour
)

// wrapRecord is what the store keeps of a token: never the token.
type wrapRecord struct {
	Hash    string    `json:"hash"` // hex SHA-256 of the token
	Venue   string    `json:"venue"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Used    time.Time `json:"used,omitzero"`
}

func wrapHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Wrap returns a single-use token that unwraps to credential id at venue
// within ttl. The credential must be an active HMAC credential: a
// public-key credential has no secret to hand over.
func (r *Registry) Wrap(ctx context.Context, venue, id string, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > MaxWrapTTL {
		return "", fmt.Errorf("wrap client: ttl must be between 0 and %s", MaxWrapTTL)
	}
	c, err := r.Get(ctx, venue, id)
	if err != nil {
		return "", fmt.Errorf("wrap client: %w", err)
	}
	if err := c.Active(r.now()); err != nil {
		return "", fmt.Errorf("wrap client: %w", err)
	}
	if r.overdueID(venue, id) {
		return "", fmt.Errorf("wrap client: %w", ErrExpired)
	}
	if c.Kind != exchange.KeyHMAC {
		return "", fmt.Errorf("wrap client: a %s credential has no secret to wrap; the bot keeps its private key", c.Kind)
	}
	rnd, err := randomString(alnum, wrapTokenLen-len(wrapTokenPrefix))
	if err != nil {
		return "", err
	}
	token := wrapTokenPrefix + rnd
	now := r.now().UTC()
	rec := wrapRecord{Hash: wrapHash(token), Venue: venue, ID: id, Created: now, Expires: now.Add(ttl)}
	raw, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if err := r.store.Put(ctx, wrapPrefix+rec.Hash, raw); err != nil {
		return "", fmt.Errorf("wrap client: %w", err)
	}
	r.wrapDeadline(rec.Hash, ttl)
	r.log.Info("client credential wrapped", "client", id, "venue", venue, "expires", rec.Expires)
	return token, nil
}

// Unwrap returns the credential token wraps, once. A token used before or
// presented after its expiry revokes the credential and returns a
// *WrapMisuse; an unknown or malformed token returns ErrWrapInvalid. The
// secret is read before the token is spent, so a sealed vault or a store
// error leaves the token usable.
func (r *Registry) Unwrap(ctx context.Context, token string) (*Issued, error) {
	if len(token) != wrapTokenLen || !strings.HasPrefix(token, wrapTokenPrefix) || !isAlnum(token[len(wrapTokenPrefix):]) {
		return nil, ErrWrapInvalid
	}
	hash := wrapHash(token)
	key := wrapPrefix + hash
	now := r.now().UTC()
	read := func(st store.Store) (wrapRecord, error) {
		var rec wrapRecord
		raw, err := st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return rec, ErrWrapInvalid
		}
		if err != nil {
			return rec, fmt.Errorf("unwrap: %w", err)
		}
		if err := json.Unmarshal(raw, &rec); err != nil || subtle.ConstantTimeCompare([]byte(rec.Hash), []byte(hash)) != 1 {
			return rec, ErrWrapInvalid
		}
		return rec, nil
	}
	rec, err := read(r.store)
	if err != nil {
		return nil, err
	}
	// A token this process made also expires on the monotonic clock, so
	// a wall clock set back does not keep it alive.
	live := func(rec wrapRecord) bool { return now.Before(rec.Expires) && !r.wrapOverdue(hash) }
	var iss *Issued
	if rec.Used.IsZero() && live(rec) {
		if iss, err = r.opened(ctx, rec.Venue, rec.ID, now); err != nil {
			// Another unwrap may have spent the token meanwhile, and the
			// reuse it met revoked the credential: this unwrap is a reuse
			// too, and is told so below, not that the credential is gone.
			if cur, rerr := read(r.store); rerr != nil || cur.Used.IsZero() {
				return nil, err
			}
			iss = nil
		}
	}
	// Spend the token: one transaction decides which unwrap is first.
	var misuse error
	claim := func(st store.Store) error {
		cur, err := read(st)
		if err != nil {
			return err
		}
		rec = cur
		switch {
		case !rec.Used.IsZero():
			misuse = ErrWrapUsed
			return nil
		case !live(rec):
			misuse = ErrWrapExpired
		}
		rec.Used = now
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return st.Put(ctx, key, raw)
	}
	if tx, ok := r.store.(store.Transactional); ok {
		err = tx.Update(ctx, func(t store.Tx) error { return claim(t) })
	} else {
		r.modeMu.Lock()
		err = claim(r.store)
		r.modeMu.Unlock()
	}
	if err != nil || misuse != nil {
		if iss != nil {
			iss.Secret.Zero()
			iss.Passphrase.Zero()
		}
	}
	if err != nil {
		if errors.Is(err, ErrWrapInvalid) {
			return nil, ErrWrapInvalid
		}
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	r.wrapMu.Lock()
	delete(r.wraps, hash) // spent
	r.wrapMu.Unlock()
	if misuse != nil {
		m := &WrapMisuse{Venue: rec.Venue, ID: rec.ID, Err: misuse}
		if err := r.Revoke(ctx, rec.Venue, rec.ID); err == nil || errors.Is(err, ErrNotFound) {
			m.Revoked = true
		} else {
			r.log.Error("unwrap misuse: revoking the credential failed", "client", rec.ID, "venue", rec.Venue, "err", err)
		}
		r.log.Warn("wrapping token misuse; credential revoked", "client", rec.ID, "venue", rec.Venue, "reason", misuse.Error())
		return nil, m
	}
	if iss == nil { // the record changed between the reads
		return nil, errors.New("unwrap: the wrapping record changed; try again")
	}
	r.log.Info("client credential unwrapped", "client", iss.ID, "venue", iss.Venue)
	return iss, nil
}

// opened returns credential id at venue with its secret, if it is active.
func (r *Registry) opened(ctx context.Context, venue, id string, now time.Time) (*Issued, error) {
	c, err := r.Get(ctx, venue, id)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	if err := c.Active(now); err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	if r.overdueID(venue, id) {
		return nil, fmt.Errorf("unwrap: %w", ErrExpired)
	}
	raw, err := r.secrets.Secret(ctx, secretKind, c.Venue+"/"+c.ID)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	var b secretBlob
	err = json.Unmarshal(raw, &b)
	clear(raw)
	if err != nil {
		return nil, errors.New("unwrap: client secret record is malformed")
	}
	return &Issued{Client: c, Secret: b.Secret, Passphrase: b.Passphrase}, nil
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// wrapDeadline records that the token with hash expires ttl from now on the
// monotonic clock, and forgets tokens long past theirs.
func (r *Registry) wrapDeadline(hash string, ttl time.Duration) {
	now := r.elapsed()
	r.wrapMu.Lock()
	defer r.wrapMu.Unlock()
	for h, d := range r.wraps {
		if now >= d+MaxWrapTTL {
			delete(r.wraps, h)
		}
	}
	r.wraps[hash] = now + ttl
}

// loadWrapDeadlines gives every unspent wrapping token in the store that
// this process has no deadline for yet (made by the CLI before the server
// started, or by another replica) a monotonic deadline: the life its wall
// clock leaves it now.
func (r *Registry) loadWrapDeadlines(ctx context.Context) error {
	keys, err := r.store.List(ctx, wrapPrefix)
	if err != nil {
		return err
	}
	now, at := r.now(), r.elapsed()
	for _, k := range keys {
		raw, err := r.store.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var rec wrapRecord
		if json.Unmarshal(raw, &rec) != nil || !rec.Used.IsZero() || wrapPrefix+rec.Hash != k {
			continue
		}
		r.wrapMu.Lock()
		if _, ok := r.wraps[rec.Hash]; !ok {
			r.wraps[rec.Hash] = at + max(rec.Expires.Sub(now), 0)
		}
		r.wrapMu.Unlock()
	}
	return nil
}

// wrapOverdue says whether the token with hash has a monotonic deadline
// (this process made or loaded it) and it has passed. A token made
// elsewhere since the last Load has only its wall-clock expiry.
func (r *Registry) wrapOverdue(hash string) bool {
	r.wrapMu.Lock()
	d, ok := r.wraps[hash]
	r.wrapMu.Unlock()
	return ok && r.elapsed() >= d
}
