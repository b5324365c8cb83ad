// Package bitget is keywarden's Bitget v2 REST venue: it verifies a bot's
// ACCESS-* signed request (HMAC or RSA) against a keywarden client
// credential, describes what the call does, re-signs it with the real
// exchange key, answers errors in Bitget's own shape, inspects a key's
// permissions, manages virtual sub-account keys for automated rotation, and
// simulates Bitget for tests (spec/exchanges.md §9).
//
// Security: this package decides which requests are accepted as authentic and
// what they are allowed to do. Changes here need a second security review.
package bitget

import (
	"net/url"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Name is the venue's name in keywarden.
const Name = "bitget"

// DefaultUpstream is Bitget's REST host. Demo trading uses the same host
// with the paptrading header (see NewDemo).
const DefaultUpstream = "https://api.bitget.com"

// DemoHeader is the header that routes a request to Bitget demo trading.
const DemoHeader = "Paptrading"

// Window is how far ACCESS-TIMESTAMP may be from keywarden's clock. Bitget
// documents 30 s for WebSocket login; the REST value is unpublished and
// assumed to be the same (spec §9 a).
const Window = 30 * time.Second

// New returns the Bitget venue forwarding to upstream (DefaultUpstream when
// nil). The bot's paptrading header passes through unchanged, so a bot in
// demo mode reaches demo trading only with a demo exchange key.
func New(upstream *url.URL) exchange.Venue {
	return newVenue(upstream, false)
}

// NewDemo returns the Bitget venue for demo trading: every signed request
// carries "paptrading: 1" whatever the bot sent.
func NewDemo(upstream *url.URL) exchange.Venue {
	return newVenue(upstream, true)
}

func newVenue(upstream *url.URL, demo bool) exchange.Venue {
	if upstream == nil {
		upstream, _ = url.Parse(DefaultUpstream)
	}
	return exchange.Venue{
		Name:            Name,
		Upstream:        upstream,
		Signer:          signer{demo: demo},
		Verifier:        verifier{},
		Describer:       describer{},
		Errors:          errorWriter{},
		Inspector:       inspector{},
		Keys:            newKeyManager(),
		Prices:          prices{},
		KeyKinds:        []exchange.KeyKind{exchange.KeyHMAC, exchange.KeyRSA},
		NeedsPassphrase: true,
	}
}

var (
	_ exchange.Signer      = signer{}
	_ exchange.Verifier    = verifier{}
	_ exchange.Describer   = describer{}
	_ exchange.ErrorWriter = errorWriter{}
	_ exchange.Inspector   = inspector{}
)
