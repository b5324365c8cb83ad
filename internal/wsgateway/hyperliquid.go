package wsgateway

import (
	"slices"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Hyperliquid's WebSocket (/ws) carries subscriptions and the post method
// on one socket, and a signed post carries no key id, so a bot that posts
// actions opens /hyperliquid/c/<client id>/ws: the socket is then bound to
// that client credential, whose wallet must have signed every action (the
// id in the path is not a credential; the signature is). /hyperliquid/ws
// serves subscriptions and info posts only. hyperliquid.WSAPI does the
// verifying, describing and re-signing, sharing the REST venue's replay
// memory and nonces.

// clientPather is a WSAPI whose sockets name their client credential in
// the path, "/c/<client id>" before one of the route's API paths.
type clientPather interface {
	ForClient(id string) (exchange.WSAPI, bool)
}

// clientPathAPI returns the WSAPI bound to the client named in rest
// ("/c/<client id>/ws") and the venue path to dial ("/ws"); ok is false
// when rest is not such a path for rt.
func clientPathAPI(rt *Route, rest string) (exchange.WSAPI, string, bool) {
	cp, ok := rt.WSAPI.(clientPather)
	if !ok {
		return nil, "", false
	}
	q, ok := strings.CutPrefix(rest, "/c/")
	if !ok {
		return nil, "", false
	}
	id, path, ok := strings.Cut(q, "/")
	if !ok || id == "" {
		return nil, "", false
	}
	path = "/" + path
	if !slices.Contains(rt.APIPaths, path) {
		return nil, "", false
	}
	api, ok := cp.ForClient(id)
	return api, path, ok
}
