// Package binance implements keywarden's Binance venues: spot (with the
// /sapi wallet API) and USDⓈ-M futures. It signs outbound requests with an
// exchange key (HMAC-SHA256, Ed25519 or RSA), verifies bots' requests with
// the same scheme against a keywarden client credential, describes every
// call (scope, orders, transfers), answers errors in Binance's own shape,
// inspects key posture, builds sub-account key-management requests, and
// provides a simulator that verifies requests exactly as Binance does.
//
// Every signature covers the exact wire bytes: the raw query string followed,
// without a separator, by the raw form body (spec/exchanges.md §2.1). Nothing
// here re-encodes a caller's parameters.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package binance

import (
	"net/url"
	"sync"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Upstream hosts.
const (
	// DefaultUpstream is Binance's spot and wallet (/api, /sapi) REST host.
	DefaultUpstream = "https://api.binance.com"
	// TestnetUpstream is the spot testnet; it has no /sapi endpoints.
	TestnetUpstream = "https://testnet.binance.vision"
	// USDMUpstream is the USDⓈ-M futures REST host.
	USDMUpstream = "https://fapi.binance.com"
	// USDMTestnetUpstream is the USDⓈ-M futures demo-trading host (the old
	// testnet.binancefuture.com is being retired).
	USDMTestnetUpstream = "https://demo-fapi.binance.com"
)

// Venue names.
const (
	SpotName = "binance"
	USDMName = "binance-usdm"
)

// Spot returns the Binance spot venue (paths /api/... and /sapi/...) whose
// requests go to upstream (DefaultUpstream when nil).
func Spot(upstream *url.URL) exchange.Venue {
	if upstream == nil {
		upstream, _ = url.Parse(DefaultUpstream)
	}
	pool := newMACPool()
	return exchange.Venue{
		Name:      SpotName,
		Upstream:  upstream,
		Signer:    &signer{recvWindow: defaultSignRecvWindow, macs: pool},
		Verifier:  &verifier{macs: pool},
		Describer: newDescriber(SpotName, spotPrefixes),
		Errors:    errorWriter{},
		Inspector: inspector{},
		Limits:    rateLimits{limit: spotWeightLimit},
		Keys:      keyManager{},
		Prices:    prices{path: "/api/v3/ticker/price"},
		KeyKinds:  []exchange.KeyKind{exchange.KeyEd25519, exchange.KeyHMAC, exchange.KeyRSA},
	}
}

// USDM returns the Binance USDⓈ-M futures venue (paths /fapi/... and
// /futures/data/...) whose requests go to upstream (USDMUpstream when nil).
// Key inspection and key management live on the spot host's /sapi API, so
// this venue has no Inspector or KeyManager: use the spot venue for them.
func USDM(upstream *url.URL) exchange.Venue {
	if upstream == nil {
		upstream, _ = url.Parse(USDMUpstream)
	}
	pool := newMACPool()
	return exchange.Venue{
		Name:      USDMName,
		Upstream:  upstream,
		Signer:    &signer{recvWindow: defaultSignRecvWindow, macs: pool},
		Verifier:  &verifier{macs: pool},
		Describer: newDescriber(USDMName, usdmPrefixes),
		Errors:    errorWriter{},
		Limits:    rateLimits{limit: usdmWeightLimit},
		Prices:    prices{path: "/fapi/v1/ticker/price"},
		KeyKinds:  []exchange.KeyKind{exchange.KeyHMAC, exchange.KeyEd25519, exchange.KeyRSA},
	}
}

var (
	_ exchange.Signer          = (*signer)(nil)
	_ exchange.Verifier        = (*verifier)(nil)
	_ exchange.Describer       = (*describer)(nil)
	_ exchange.ErrorWriter     = errorWriter{}
	_ exchange.Inspector       = inspector{}
	_ exchange.RateLimitReader = rateLimits{}
	_ exchange.KeyManager      = keyManager{}
)

// macPool hands out scratch space for HMAC-SHA256 computed from the pads on
// every call: nothing keyed outlives one call, and the steady state does not
// allocate.
type macPool struct{ p sync.Pool }
