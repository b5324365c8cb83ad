// Package bybit is keywarden's Bybit v5 REST venue: it verifies a bot's
// X-BAPI-* signed request (HMAC or RSA) against a keywarden client
// credential, describes what the call does, re-signs it with the real
// exchange key, answers errors in Bybit's own shape, reads Bybit's rate-limit
// headers, inspects and manages keys, and simulates Bybit for tests
// (spec/exchanges.md §7).
//
// Security: this package decides which requests are accepted as authentic and
// what they are allowed to do. Changes here need a second security review.
package bybit

import (
	"net/url"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Name is the venue's name in keywarden.
const Name = "bybit"

// DefaultUpstream is Bybit's production REST host.
const DefaultUpstream = "https://api.bybit.com"

// TestnetUpstream is Bybit's testnet REST host (separate keys).
const TestnetUpstream = "https://api-testnet.bybit.com"

// DemoUpstream is Bybit's demo-trading REST host (separate keys).
const DemoUpstream = "https://api-demo.bybit.com"

// RecvWindow is the receive window, in ms, the signer sends.
const RecvWindow = 5000

// MaxRecvWindow is the largest receive window, in ms, the verifier accepts
// from a bot; a larger one would stretch the replay window.
const MaxRecvWindow = 60000

// Future is how far ahead of keywarden's clock a timestamp may be (Bybit:
// timestamp < server_time + 1000).
const Future = time.Second

// New returns the Bybit venue forwarding to upstream (DefaultUpstream when
// nil). Testnet and demo trading are separate hosts: choose them here.
func New(upstream *url.URL) exchange.Venue {
	if upstream == nil {
		upstream, _ = url.Parse(DefaultUpstream)
	}
	return exchange.Venue{
		Name:      Name,
		Upstream:  upstream,
		Signer:    signer{},
		Verifier:  verifier{},
		Describer: describer{},
		Errors:    errorWriter{},
		Inspector: inspector{},
		Limits:    rateLimits{},
		Keys:      keyManager{},
		Prices:    prices{},
		KeyKinds:  []exchange.KeyKind{exchange.KeyHMAC, exchange.KeyRSA},
	}
}

var (
	_ exchange.Signer          = signer{}
	_ exchange.Verifier        = verifier{}
	_ exchange.Describer       = describer{}
	_ exchange.ErrorWriter     = errorWriter{}
	_ exchange.Inspector       = inspector{}
	_ exchange.RateLimitReader = rateLimits{}
	_ exchange.KeyManager      = keyManager{}
)
