// Package okx is keywarden's OKX v5 REST venue: it verifies a bot's
// OK-ACCESS-* signed request against a keywarden client credential, describes
// what the call does, re-signs it with the real exchange key, answers errors
// in OKX's own shape, inspects a key's permissions, and simulates OKX for
// tests (spec/exchanges.md §6).
//
// Security: this package decides which requests are accepted as authentic and
// what they are allowed to do. Changes here need a second security review.
package okx

import (
	"net/url"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Name is the venue's name in keywarden.
const Name = "okx"

// DefaultUpstream is OKX's production REST host. Demo trading uses the same
// host with the x-simulated-trading header (see NewDemo).
const DefaultUpstream = "https://www.okx.com"

// DemoHeader is the header that routes a request to OKX demo trading.
const DemoHeader = "X-Simulated-Trading"

// Window is how far the OK-ACCESS-TIMESTAMP may be from keywarden's clock.
// OKX documents 30 s for WebSocket login; REST behaves the same.
const Window = 30 * time.Second

// New returns the OKX venue forwarding to upstream (DefaultUpstream when nil).
// The bot's x-simulated-trading header passes through unchanged, so a bot in
// demo mode reaches demo trading only with a demo exchange key.
func New(upstream *url.URL) exchange.Venue {
	return newVenue(upstream, false)
}

// NewDemo returns the OKX venue for demo trading: every signed request
// carries "x-simulated-trading: 1" whatever the bot sent.
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
		Keys:            keyManager{},
		Prices:          prices{},
		KeyKinds:        []exchange.KeyKind{exchange.KeyHMAC},
		NeedsPassphrase: true,
	}
}

var (
	_ exchange.Signer      = signer{}
	_ exchange.Verifier    = verifier{}
	_ exchange.Describer   = describer{}
	_ exchange.ErrorWriter = errorWriter{}
	_ exchange.Inspector   = inspector{}
	_ exchange.KeyManager  = keyManager{}
)
