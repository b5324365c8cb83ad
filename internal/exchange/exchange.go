// Package exchange is keywarden's shared vocabulary for talking to
// cryptocurrency exchanges: a Venue, the Request the gateway receives and
// sends, the Call it describes, and the Credential used to sign or verify.
//
// Each exchange lives in its own subpackage (binance, okx, ...) and provides
// a Venue built from the interfaces below, plus a simulator used by tests.
//
// Security: this package and its subpackages decide what is signed and what
// is accepted as authentic. Changes here need a second security review.
package exchange

import (
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Scope is the kind of access a call needs, from least to most dangerous.
type Scope string

// Scopes, in increasing order of danger. An unknown private endpoint is
// ScopeAccountAdmin, which policies deny unless they allow it explicitly.
const (
	ScopePublic       Scope = "public"
	ScopeRead         Scope = "read"
	ScopeTrade        Scope = "trade"
	ScopeTransfer     Scope = "transfer"
	ScopeWithdraw     Scope = "withdraw"
	ScopeAccountAdmin Scope = "account-admin"
)

// Scopes lists every scope in increasing order of danger.
var Scopes = []Scope{ScopePublic, ScopeRead, ScopeTrade, ScopeTransfer, ScopeWithdraw, ScopeAccountAdmin}

// ParseScope returns the Scope named s.
func ParseScope(s string) (Scope, error) {
	for _, sc := range Scopes {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("unknown scope %q (want one of public, read, trade, transfer, withdraw, account-admin)", s)
}

// Request is an HTTP request to or from a venue in wire form. Path is the
// venue-relative path (for example "/api/v3/order", without the gateway's
// "/binance" prefix). RawQuery and Body are the exact bytes sent or received:
// signatures cover these bytes, so nobody re-encodes them (see spec §18).
//
// A Request is not safe for concurrent use.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	// Scratch, when set, is memory the caller lends the Signer for what it
	// writes into the request (see SignScratch for how long that stays
	// valid). Nil: the Signer allocates.
	Scratch *SignScratch
}

// Clone returns a deep copy of r. The copy has no Scratch and nothing of it
// points into r's.
func (r *Request) Clone() *Request {
	c := *r
	c.Header = r.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	if r.Body != nil {
		c.Body = append([]byte(nil), r.Body...)
	}
	if r.Scratch != nil {
		c.detach()
	}
	return &c
}

// Side is the normalized side of an order.
type Side string

// Order sides.
const (
	Buy  Side = "buy"
	Sell Side = "sell"
)

// Action says what a call does to an order.
type Action string

// Order actions. Amend can raise size or price and is checked like New.
const (
	ActionNew    Action = "new"
	ActionAmend  Action = "amend"
	ActionCancel Action = "cancel"
)

// Order is one order inside a call; batch endpoints give several. Numeric
// fields are zero when the request does not carry them. Symbols are in the
// venue's own spelling (BTCUSDT, BTC-USDT, XBTUSD, ...).
type Order struct {
	Action        Action
	Symbol        string
	Side          Side
	Type          string // venue spelling, lower-cased: limit, market, stop_loss, ...
	Quantity      float64
	Price         float64
	QuoteQuantity float64 // market order sized in the quote currency
	// Notional is the order's value in the quote currency when the request
	// alone says it (quantity*price, or QuoteQuantity); zero when it needs a
	// reference price.
	Notional float64
	// Contracts says Quantity counts contracts or lots whose value the
	// request does not tell (swaps, futures and options sized by a contract
	// multiplier): Quantity*Price is not the order's value, so a policy that
	// needs the notional treats it as unknown unless Notional or
	// QuoteQuantity says it.
	Contracts     bool
	ClientOrderID string
	ReduceOnly    bool
	// QuantityText and PriceText are Quantity and Price exactly as the
	// request writes them in decimal, where the venue takes decimal text:
	// a float64 cannot tell 10000 from 10000.0000000000001, and a policy
	// that checks a cap compares the exact product near the cap. Empty
	// when unknown.
	QuantityText, PriceText string
}

// Transfer is a movement of funds: a withdrawal to an address, or an internal
// transfer between wallets or accounts.
type Transfer struct {
	Asset       string
	Amount      float64
	Address     string
	Network     string
	Memo        string
	Destination string // internal transfers: target wallet, account or user
}

// Call is what a request does, as keywarden understands it. Policies are
// written against Calls.
type Call struct {
	Venue    string
	Method   string
	Path     string
	Endpoint string // canonical "METHOD /path" or the venue's method name
	Scope    Scope
	Orders   []Order
	Transfer *Transfer
}

// KeyKind is the algorithm of a credential.
type KeyKind string

// Key kinds.
const (
	KeyHMAC    KeyKind = "hmac"
	KeyEd25519 KeyKind = "ed25519"
	KeyRSA     KeyKind = "rsa"
	KeyECDSA   KeyKind = "ecdsa"
)

// Credential is an exchange key (to sign outbound requests) or a keywarden
// client credential (to verify a bot's requests). APIKey is the public
// identifier. For HMAC kinds Secret is the shared secret exactly as the venue
// issued it (the bytes of the string; venues that base64-decode it do so
// themselves). For asymmetric kinds, PrivateKey signs and PublicKey verifies;
// a client credential of an asymmetric kind has only PublicKey.
//
// Credentials hold plaintext secrets: only the vault creates them with
// secrets, and nobody keeps them beyond one request. A Credential is safe for
// concurrent use once built.
type Credential struct {
	Kind       KeyKind
	APIKey     string
	Secret     Secret
	Passphrase Secret
	PrivateKey crypto.Signer
	PublicKey  crypto.PublicKey
	// Account is a venue-specific extra identifier (Coinbase key name,
	// Deribit numeric key id, ...), never secret.
	Account string
}

// String never shows the secret parts.
func (c *Credential) String() string {
	return fmt.Sprintf("Credential{Kind:%s APIKey:%s}", c.Kind, c.APIKey)
}

// GoString never shows the secret parts.
func (c *Credential) GoString() string { return c.String() }

// ErrorKind classifies an error the gateway or a verifier produces, so each
// venue can answer in its own error shape.
type ErrorKind int

// Error kinds.
const (
	ErrBadRequest  ErrorKind = iota + 1 // malformed request
	ErrAuth                             // unknown key, bad signature, missing auth field
	ErrTimestamp                        // outside the time window, nonce reused
	ErrPassphrase                       // wrong passphrase
	ErrIP                               // source address not allowed
	ErrPermission                       // policy denial or missing permission
	ErrRateLimit                        // too many requests
	ErrUnavailable                      // keywarden cannot serve (audit down, sealed, panic)
	ErrNotFound                         // no such endpoint
	ErrUpstream                         // the venue could not be reached
)

// Error is an error keywarden answers with itself. Message is safe to show the
// caller and never contains a secret. RetryAfter is set for ErrRateLimit.
type Error struct {
	Kind       ErrorKind
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error of kind k.
func Errorf(k ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, or wraps it as ErrBadRequest.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: ErrBadRequest, Message: err.Error()}
}

// Signer authenticates an outbound request with an exchange key: it adds the
// venue's auth headers or parameters (timestamp, nonce, signature) to r in
// place. It must not keep key.
//
// A Signer is no signing oracle: the gateway calls it only with a request it
// built from the checked fields after the policy allowed the call.
type Signer interface {
	Sign(r *Request, key *Credential, now time.Time) error
}

// Verifier authenticates a bot's inbound request the way the venue would, but
// against a keywarden client credential.
type Verifier interface {
	// ClientKey returns the public identifier of the credential r claims to
	// be signed with. It returns "" and a nil error when r carries no
	// credential at all (a public call), and an ErrAuth *Error when the
	// credential is present but malformed.
	ClientKey(r *Request) (string, error)
	// Verify checks r's signature, passphrase and time window against client
	// and returns a copy of r with every piece of the bot's auth material
	// removed, ready to be described and signed with the exchange key.
	// Errors are *Error.
	Verify(r *Request, client *Credential, now time.Time) (*Request, error)
}

// Describer says what a request does. Describe ignores the bot's auth
// material, so it gives the same Call for a request before and after Verify.
// Errors are *Error (ErrBadRequest for malformed requests).
type Describer interface {
	Describe(r *Request) (Call, error)
}

// ErrorWriter answers with an *Error in the venue's own status and body
// shape, so bots that parse venue errors keep working.
type ErrorWriter interface {
	WriteError(w http.ResponseWriter, e *Error)
}

// KeyPosture is what a venue says about one of its keys.
type KeyPosture struct {
	Permissions  []string // the venue's own permission names that are granted
	CanRead      bool
	CanTrade     bool
	CanTransfer  bool
	CanWithdraw  bool
	CanFutures   bool
	IPRestricted bool
	IPs          []string
	Created      time.Time
	Expires      time.Time
}

// Inspector builds the venue's key self-inspection request and parses its
// answer. It is optional: not every venue has one.
type Inspector interface {
	InspectRequest() *Request
	ParsePosture(status int, body []byte) (KeyPosture, error)
}

// RateLimit is the venue's account of a key's request budget, read from
// response headers.
type RateLimit struct {
	Used, Limit int
	Window      time.Duration
}

// RateLimitReader reads a RateLimit from a venue's response headers. ok is
// false when the headers say nothing.
type RateLimitReader interface {
	RateLimit(h http.Header) (rl RateLimit, ok bool)
}

// Venue is one exchange API as the gateway routes to it. Upstream is fixed by
// configuration; nothing in a request can change it.
type Venue struct {
	Name      string
	Upstream  *url.URL
	Signer    Signer
	Verifier  Verifier
	Describer Describer
	Errors    ErrorWriter
	Inspector Inspector       // optional
	Limits    RateLimitReader // optional
	Keys      KeyManager      // optional
	Prices    PriceReader     // optional
	// KeyKinds are the exchange-key kinds the venue accepts, first preferred.
	KeyKinds []KeyKind
	// NeedsPassphrase says the venue's keys come with a passphrase.
	NeedsPassphrase bool
}

// KeySpec describes an API key to create at a venue (automated rotation).
type KeySpec struct {
	Label       string
	Permissions []string // the venue's own permission names
	IPs         []string
	SubAccount  string // venues that create keys only for sub-accounts
	PublicKey   string // venues that register a public key (Binance Ed25519/RSA)
	// Passphrase is the key's passphrase where the venue needs it to manage
	// the key (KuCoin asks for it to delete one).
	Passphrase Secret
}

// KeyManager builds the venue's key-management requests and parses their
// answers, for venues whose API can create and delete keys (spec §14.1). It is
// optional.
type KeyManager interface {
	CreateKeyRequest(spec KeySpec) (*Request, error)
	ParseCreatedKey(status int, body []byte) (*Credential, error)
	DeleteKeyRequest(apiKey string, spec KeySpec) (*Request, error)
}

// PriceReader builds the venue's public ticker request for a symbol and reads
// the last traded price from its answer, so policies can value market orders
// and check price bands. It is optional.
type PriceReader interface {
	TickerRequest(symbol string) *Request
	ParsePrice(symbol string, status int, body []byte) (float64, error)
}
