// Package client manages keywarden client credentials: the credentials bots
// use instead of an exchange secret. Each credential is bound to exactly one
// exchange key and one policy, has an expiry and an optional source-address
// allowlist, and is stored only as needed to verify: HMAC secrets sealed by
// the vault, public keys in clear.
//
// A Registry is safe for concurrent use. Lookups are served from memory so
// that the gateway's hot path never touches the database; revocation updates
// memory and the store together and takes effect on the next request.
//
// Security: this package decides which bot is who. Changes here need a
// second security review.
package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/store"
)

// Errors callers match.
var (
	ErrNotFound = errors.New("no such client credential")
	ErrRevoked  = errors.New("client credential revoked")
	ErrExpired  = errors.New("client credential expired")
)

// Secrets seals and opens client secrets. The vault implements it.
type Secrets interface {
	PutSecret(ctx context.Context, kind, id string, secret []byte) error
	Secret(ctx context.Context, kind, id string) ([]byte, error)
	DeleteSecret(ctx context.Context, kind, id string) error
}

// secretKind is the vault record kind of client secrets.
const secretKind = "client"

// Client is one client credential's metadata. It never holds a secret.
type Client struct {
	ID      string           `json:"id"`     // the public key id the bot sends
	Venue   string           `json:"venue"`  // gateway venue name, e.g. binance
	Key     string           `json:"key"`    // exchange key name, e.g. main
	Policy  string           `json:"policy"` // policy name
	Kind    exchange.KeyKind `json:"kind"`
	Label   string           `json:"label,omitempty"`
	Created time.Time        `json:"created"`
	Expires time.Time        `json:"expires"`
	Revoked time.Time        `json:"revoked,omitzero"`
	CIDRs   []netip.Prefix   `json:"cidrs,omitempty"`
	// PublicKey is the bot's PKIX PEM public key for asymmetric kinds.
	PublicKey string `json:"public_key,omitempty"`
	// Account is the venue-specific extra id (Coinbase key name, ...).
	Account string `json:"account,omitempty"`
	// Passphrase says the credential has a passphrase (sealed with the secret).
	Passphrase bool `json:"passphrase,omitempty"`
	// CertSHA256 binds the credential to a TLS client certificate: the
	// hex SHA-256 of its DER. Requests without that certificate are refused.
	CertSHA256 string `json:"cert_sha256,omitempty"`
	// ReadOnly, when set, downgrades the credential to public and read
	// calls (see readonly.go); nil means it trades as its policy allows.
	ReadOnly *Downgrade `json:"read_only,omitempty"`
}

// Active reports why c cannot be used at now, or nil.
func (c *Client) Active(now time.Time) error {
	if !c.Revoked.IsZero() {
		return ErrRevoked
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return ErrExpired
	}
	return nil
}

// AllowsCert says whether a request whose TLS client certificate chain is
// peer may use the credential. Credentials bound to no certificate allow any.
func (c *Client) AllowsCert(peer []*x509.Certificate) bool {
	if c.CertSHA256 == "" {
		return true
	}
	if len(peer) == 0 {
		return false
	}
	sum := sha256.Sum256(peer[0].Raw)
	return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(c.CertSHA256)) == 1
}

// CertFingerprint is the fingerprint CertSHA256 holds for cert.
func CertFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// AllowsIP says whether addr may use the credential.
func (c *Client) AllowsIP(addr netip.Addr) bool {
	if len(c.CIDRs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range c.CIDRs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Entry is a Client with its verification credential, as the gateway uses it.
type Entry struct {
	Client
	Cred *exchange.Credential
	// deadline is when the credential expires on the registry's
	// monotonic clock (Options.Elapsed), fixed when this process issued
	// or loaded it; 0 means none. It keeps a wall clock set back from
	// lengthening the credential's life.
	deadline time.Duration
}

// IssueOptions describe a credential to create.
type IssueOptions struct {
	Venue  string
	Key    string
	Policy string
	TTL    time.Duration
	CIDRs  []netip.Prefix
	Label  string
	// Kind is hmac (keywarden generates the secret) or an asymmetric kind,
	// in which case PublicKeyPEM is the bot's public key.
	Kind         exchange.KeyKind
	PublicKeyPEM string
	// Account is the venue-specific key name for asymmetric credentials
	// (Coinbase "organizations/…/apiKeys/…"); generated when empty.
	Account string
	// Format says how to shape the generated secret.
	Format Format
	// CertSHA256 binds the credential to a TLS client certificate.
	CertSHA256 string
}

// Format is how a venue expects a credential to look.
type Format struct {
	Base64Secret bool // the venue base64-decodes its secret (Kraken)
	Passphrase   bool // the venue's keys come with a passphrase (OKX, KuCoin, Bitget)
	// KeyNamePrefix shapes the id of public-key credentials like the
	// venue's key names ("organizations/…/apiKeys/" at Coinbase), so client
	// libraries pick the right signing scheme.
	KeyNamePrefix string
}

// Issued is what Issue returns: shown once, never stored in clear.
type Issued struct {
	Client
	Secret     exchange.Secret
	Passphrase exchange.Secret
}

// Registry holds client credentials.
type Registry struct {
	store   store.Store
	secrets Secrets
	log     *slog.Logger
	now     func() time.Time
	elapsed func() time.Duration

	// wraps holds the monotonic deadline of each wrapping token this
	// process issued, by token hash (wrap.go).
	wrapMu sync.Mutex
	wraps  map[string]time.Duration

	mu      sync.RWMutex
	entries map[entryKey]*Entry
	// modeMu serialises the read-modify-write of stored records (revoke,
	// read-only) and reloads, so that none undoes another.
	modeMu sync.Mutex
}

// Options configure a Registry.
type Options struct {
	Store   store.Store
	Secrets Secrets
	Logger  *slog.Logger
	Now     func() time.Time
	// Elapsed is a monotonic clock: the time since a fixed point, never
	// going back when the wall clock is set. nil uses the process's
	// monotonic clock. Expiries the registry fixed itself (credentials
	// it issued or loaded, wrapping tokens it made) are also measured on
	// it, so setting the wall clock back never lengthens them.
	Elapsed func() time.Duration
}

// New returns a Registry; call Load to fill its memory from the store.
func New(o Options) *Registry {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Elapsed == nil {
		start := time.Now() // carries the monotonic reading
		o.Elapsed = func() time.Duration { return time.Since(start) }
	}
	return &Registry{store: o.Store, secrets: o.Secrets, log: o.Logger, now: o.Now, elapsed: o.Elapsed,
		wraps: map[string]time.Duration{}, entries: map[entryKey]*Entry{}}
}

const prefix = "clients/"

func storeKey(venue, id string) string { return prefix + venue + "/" + id }

// entryKey names a credential in memory. A struct of the two strings, not
// their concatenation, so that a lookup on the request path allocates
// nothing.
type entryKey struct{ venue, id string }

func memKey(venue, id string) entryKey { return entryKey{venue, id} }

// Load reads every credential from the store and opens the HMAC secrets of
// the active ones (the vault must be unsealed).
func (r *Registry) Load(ctx context.Context) error {
	r.modeMu.Lock()
	defer r.modeMu.Unlock()
	keys, err := r.store.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("load clients: %w", err)
	}
	entries := map[entryKey]*Entry{}
	now := r.now()
	for _, k := range keys {
		raw, err := r.store.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("load client %s: %w", k, err)
		}
		var c Client
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("load client %s: %w", k, err)
		}
		if c.Active(now) != nil {
			continue
		}
		e, err := r.entry(ctx, c)
		if err != nil {
			return fmt.Errorf("load client %s: %w", c.ID, err)
		}
		entries[memKey(c.Venue, c.ID)] = e
	}
	if err := r.loadWrapDeadlines(ctx); err != nil {
		return fmt.Errorf("load clients: %w", err)
	}
	r.mu.Lock()
	old := r.entries
	r.entries = entries
	r.mu.Unlock()
	zeroAll(old)
	return nil
}

// Forget drops every opened secret from memory (on seal).
func (r *Registry) Forget() {
	r.mu.Lock()
	old := r.entries
	r.entries = map[entryKey]*Entry{}
	r.mu.Unlock()
	zeroAll(old)
}

func zeroAll(m map[entryKey]*Entry) {
	for _, e := range m {
		if e.Cred != nil {
			e.Cred.Secret.Zero()
			e.Cred.Passphrase.Zero()
		}
	}
}

// secretBlob is how the secret and passphrase are sealed together.
type secretBlob struct {
	Secret     []byte `json:"s"`
	Passphrase []byte `json:"p,omitempty"`
}

func (r *Registry) entry(ctx context.Context, c Client) (*Entry, error) {
	// The life left now, by the wall clock, becomes a deadline on the
	// monotonic clock. Taken before anything slow, so it errs short.
	var deadline time.Duration
	if !c.Expires.IsZero() {
		deadline = max(r.elapsed()+c.Expires.Sub(r.now()), 1)
	}
	cred := &exchange.Credential{Kind: c.Kind, APIKey: c.ID, Account: c.Account}
	switch c.Kind {
	case exchange.KeyHMAC:
		raw, err := r.secrets.Secret(ctx, secretKind, c.Venue+"/"+c.ID)
		if err != nil {
			return nil, err
		}
		var b secretBlob
		err = json.Unmarshal(raw, &b)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("client secret record is malformed")
		}
		cred.Secret = b.Secret
		cred.Passphrase = b.Passphrase
	default:
		pub, err := ParsePublicKey(c.PublicKey)
		if err != nil {
			return nil, err
		}
		cred.PublicKey = pub
	}
	return &Entry{Client: c, Cred: cred, deadline: deadline}, nil
}

// overdue says whether e's monotonic deadline has passed.
func (r *Registry) overdue(e *Entry) bool {
	return e.deadline > 0 && r.elapsed() >= e.deadline
}

// overdueID says whether credential id at venue, as this process holds it,
// is past its monotonic deadline.
func (r *Registry) overdueID(venue, id string) bool {
	r.mu.RLock()
	e, ok := r.entries[memKey(venue, id)]
	r.mu.RUnlock()
	return ok && r.overdue(e)
}

// Lookup returns the active credential id at venue. It answers from memory.
func (r *Registry) Lookup(venue, id string) (*Entry, error) {
	r.mu.RLock()
	e, ok := r.entries[memKey(venue, id)]
	r.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	if err := e.Active(r.now()); err != nil {
		return nil, err
	}
	if r.overdue(e) {
		return nil, ErrExpired
	}
	return e, nil
}

// Issue creates a credential. The secret in the result is shown once.
func (r *Registry) Issue(ctx context.Context, o IssueOptions) (*Issued, error) {
	if o.Venue == "" || o.Key == "" || o.Policy == "" {
		return nil, errors.New("issue client: venue, key and policy are required")
	}
	if o.TTL <= 0 {
		return nil, errors.New("issue client: a positive ttl is required")
	}
	if o.Kind == "" {
		o.Kind = exchange.KeyHMAC
	}
	now := r.now().UTC()
	c := Client{
		Venue: o.Venue, Key: o.Key, Policy: o.Policy, Kind: o.Kind, Label: o.Label,
		Created: now, Expires: now.Add(o.TTL), CIDRs: o.CIDRs, Account: o.Account, CertSHA256: o.CertSHA256,
	}
	if c.CertSHA256 != "" && !isHexSHA256(c.CertSHA256) {
		return nil, errors.New("issue client: certificate fingerprint must be 64 lower-case hex digits")
	}
	id, err := randomString(alnum, 48)
	if err != nil {
		return nil, err
	}
	c.ID = "kw" + id
	out := &Issued{}
	switch o.Kind {
	case exchange.KeyHMAC:
		var secret string
		if o.Format.Base64Secret {
			b := make([]byte, 64)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			secret = base64.StdEncoding.EncodeToString(b)
			clear(b)
		} else if secret, err = randomString(alnum, 64); err != nil {
			return nil, err
		}
		out.Secret = exchange.Secret(secret)
		if o.Format.Passphrase {
			p, err := randomString(alnum, 24)
			if err != nil {
				return nil, err
			}
			out.Passphrase = exchange.Secret(p)
			c.Passphrase = true
		}
		blob, err := json.Marshal(secretBlob{Secret: out.Secret, Passphrase: out.Passphrase})
		if err != nil {
			return nil, err
		}
		err = r.secrets.PutSecret(ctx, secretKind, c.Venue+"/"+c.ID, blob)
		clear(blob)
		if err != nil {
			return nil, fmt.Errorf("issue client: %w", err)
		}
	case exchange.KeyEd25519, exchange.KeyECDSA, exchange.KeyRSA:
		pub, err := ParsePublicKey(o.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("issue client: %w", err)
		}
		if k := KindOf(pub); k != o.Kind {
			return nil, fmt.Errorf("issue client: public key is %s, not %s", k, o.Kind)
		}
		c.PublicKey = strings.TrimSpace(o.PublicKeyPEM) + "\n"
		c.ID = o.Format.KeyNamePrefix + c.ID
		if c.Account == "" {
			c.Account = c.ID
		}
	default:
		return nil, fmt.Errorf("issue client: unknown kind %q", o.Kind)
	}
	if err := r.put(ctx, c); err != nil {
		if c.Kind == exchange.KeyHMAC {
			_ = r.secrets.DeleteSecret(ctx, secretKind, c.Venue+"/"+c.ID)
		}
		return nil, err
	}
	e, err := r.entry(ctx, c)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.entries[memKey(c.Venue, c.ID)] = e
	r.mu.Unlock()
	out.Client = c
	r.log.Info("client credential issued", "client", c.ID, "venue", c.Venue, "key", c.Key, "policy", c.Policy, "expires", c.Expires)
	return out, nil
}

func (r *Registry) put(ctx context.Context, c Client) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := r.store.Put(ctx, storeKey(c.Venue, c.ID), raw); err != nil {
		return fmt.Errorf("store client: %w", err)
	}
	return nil
}

// Get returns the metadata of one credential, active or not.
func (r *Registry) Get(ctx context.Context, venue, id string) (Client, error) {
	raw, err := r.store.Get(ctx, storeKey(venue, id))
	if errors.Is(err, store.ErrNotFound) {
		return Client{}, ErrNotFound
	}
	if err != nil {
		return Client{}, err
	}
	var c Client
	if err := json.Unmarshal(raw, &c); err != nil {
		return Client{}, fmt.Errorf("client %s: %w", id, err)
	}
	return c, nil
}

// Find returns the credential called id at any venue.
func (r *Registry) Find(ctx context.Context, id string) (Client, error) {
	all, err := r.List(ctx)
	if err != nil {
		return Client{}, err
	}
	for _, c := range all {
		if c.ID == id {
			return c, nil
		}
	}
	return Client{}, ErrNotFound
}

// List returns every credential's metadata, newest first.
func (r *Registry) List(ctx context.Context) ([]Client, error) {
	keys, err := r.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Client, 0, len(keys))
	for _, k := range keys {
		raw, err := r.store.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		var c Client
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("client %s: %w", k, err)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Revoke revokes id at once: the next request with it is refused. The sealed
// secret is destroyed.
func (r *Registry) Revoke(ctx context.Context, venue, id string) error {
	r.modeMu.Lock()
	defer r.modeMu.Unlock()
	c, err := r.Get(ctx, venue, id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if e, ok := r.entries[memKey(venue, id)]; ok {
		delete(r.entries, memKey(venue, id))
		zeroAll(map[entryKey]*Entry{{}: e})
	}
	r.mu.Unlock()
	if !c.Revoked.IsZero() {
		return nil
	}
	c.Revoked = r.now().UTC()
	if err := r.put(ctx, c); err != nil {
		return err
	}
	if c.Kind == exchange.KeyHMAC {
		if err := r.secrets.DeleteSecret(ctx, secretKind, venue+"/"+id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("revoke client: destroy secret: %w", err)
		}
	}
	r.log.Info("client credential revoked", "client", id, "venue", venue)
	return nil
}

// Rotate issues a replacement for id with the same binding and ttl, and
// revokes id after grace (at once when grace is zero). Asymmetric
// credentials need the bot's new public key in pubPEM.
func (r *Registry) Rotate(ctx context.Context, venue, id string, format Format, pubPEM string) (*Issued, error) {
	c, err := r.Get(ctx, venue, id)
	if err != nil {
		return nil, err
	}
	if err := c.Active(r.now()); err != nil {
		return nil, fmt.Errorf("rotate client %s: %w", id, err)
	}
	ttl := c.Expires.Sub(c.Created)
	n, err := r.Issue(ctx, IssueOptions{
		Venue: c.Venue, Key: c.Key, Policy: c.Policy, TTL: ttl, CIDRs: c.CIDRs, Label: c.Label,
		Kind: c.Kind, PublicKeyPEM: pubPEM, Format: format, CertSHA256: c.CertSHA256,
	})
	if err != nil {
		return nil, err
	}
	if c.ReadOnly != nil {
		// A replacement stays downgraded: only restoring trading lifts it.
		d := *c.ReadOnly
		nc, _, err := r.setMode(ctx, n.Venue, n.ID, func(nc *Client) (bool, error) { nc.ReadOnly = &d; return true, nil })
		if err != nil {
			return nil, err
		}
		n.Client = nc
	}
	if err := r.Revoke(ctx, venue, id); err != nil {
		return nil, err
	}
	return n, nil
}

// ParsePublicKey parses a PKIX ("PUBLIC KEY") PEM public key.
func ParsePublicKey(p string) (crypto.PublicKey, error) {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return nil, errors.New("public key: no PEM block found")
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("public key: PEM type %q, want PUBLIC KEY", blk.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if KindOf(pub) == "" {
		return nil, errors.New("public key: unsupported algorithm")
	}
	return pub, nil
}

// KindOf names the algorithm of pub.
func KindOf(pub crypto.PublicKey) exchange.KeyKind {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return exchange.KeyEd25519
	case *ecdsa.PublicKey:
		return exchange.KeyECDSA
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return ""
		}
		return exchange.KeyRSA
	}
	return ""
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters drawn uniformly from alphabet with
// crypto/rand.
func randomString(alphabet string, n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b), nil
}
