package hyperliquid

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
)

// Signer signs /exchange requests with a vault key: Secret is the wallet's
// hex private key, APIKey its address, and Account the master account's
// address. A key whose address is not the master's is an agent (API wallet)
// and signs L1 actions only; user-signed actions need the master key.
//
// The Signer owns the nonce of every key it signs with: each signature gets
// the current time in ms, fast-forwarded past the key's last nonce, so
// concurrent requests never reuse one (Hyperliquid keeps nonces per signer).
//
// A Signer is no signing oracle: the gateway calls it only with a request it
// built from the checked fields after the policy allowed the call. It is
// safe for concurrent use.
type Signer struct {
	net Network
	mu  sync.Mutex
	// last nonce per signing address
	last map[eip712.Address]uint64
}

// NewSigner returns a Signer for net.
func NewSigner(net Network) *Signer { return &Signer{net: net, last: map[eip712.Address]uint64{}} }

// nextNonce returns a nonce for addr greater than any given before.
func (s *Signer) nextNonce(addr eip712.Address, now time.Time) uint64 {
	n := uint64(now.UnixMilli())
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.last[addr]; n <= l {
		n = l + 1
	}
	s.last[addr] = n
	return n
}

// KeyOf opens a vault credential as a wallet key, checking that APIKey is
// the key's own address. The caller must Zero the key.
func KeyOf(c *exchange.Credential) (*eip712.PrivateKey, bool, error) {
	if c == nil || len(c.Secret) == 0 {
		return nil, false, errors.New("hyperliquid key has no private key")
	}
	k, err := eip712.ParsePrivateKey(string(c.Secret))
	if err != nil {
		return nil, false, fmt.Errorf("hyperliquid key: %w", err)
	}
	addr := k.Address()
	if !strings.EqualFold(c.APIKey, addr.Hex()) {
		k.Zero()
		return nil, false, errors.New("hyperliquid key: API key id is not the private key's address")
	}
	master := c.Account == "" || strings.EqualFold(c.Account, addr.Hex())
	return k, master, nil
}

// Sign sets a fresh nonce and signs r's action. r.Body is a /exchange body
// without signature, as Verify returns it.
func (s *Signer) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	if r.Path != "/exchange" {
		return nil // /info needs no signature
	}
	env, err := parseEnvelope(r.Body)
	if err != nil {
		return fmt.Errorf("hyperliquid sign: %w", err)
	}
	k, master, err := KeyOf(key)
	if err != nil {
		return err
	}
	defer k.Zero()
	if env.userSigned() && !master {
		return fmt.Errorf("hyperliquid sign: %s must be signed by the master wallet, and key %s is an agent", env.Type, key.APIKey)
	}
	env.setNonce(s.nextNonce(k.Address(), now))
	d, err := env.digest(s.net)
	if err != nil {
		return fmt.Errorf("hyperliquid sign: %w", err)
	}
	sig, err := k.Sign(d)
	if err != nil {
		return err
	}
	env.Sig = &sig
	body, err := env.encode()
	if err != nil {
		return err
	}
	r.Body = body
	if r.Header == nil {
		r.Header = map[string][]string{}
	}
	r.SetSignedHeader("Content-Type", "application/json")
	return nil
}

// ClientPrivateKey is the wallet key a bot signs with for a keywarden client
// credential whose issued secret is secret: keccak256 of the secret's
// bytes, as 0x-hex. The bot configures it as its private key; keywarden
// recovers its address from every signature and matches it to the
// credential.
func ClientPrivateKey(secret []byte) (*eip712.PrivateKey, error) {
	h := eip712.Keccak256(secret)
	defer clear(h)
	return eip712.PrivateKeyFromBytes(h)
}
