package server

import (
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/bybit"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/exchange/okx"
	"github.com/keywarden/keywarden/internal/wsgateway"
)

// wsVenue is where a venue's WebSockets live and how its WS API is handled.
type wsVenue struct {
	streams, api string
	apiPaths     []string
	streamPaths  []string
	wsapi        func() exchange.WSAPI
	// wsapiOf builds the WS API from the REST venue instead, for venues
	// whose WS API shares its replay memory and nonces (Hyperliquid); an
	// empty streams then means the REST host's own wss:// (mainnet or
	// testnet).
	wsapiOf     func(exchange.Venue) (exchange.WSAPI, error)
	userStreams bool // listen-key user-data streams on the stream host
}

// wsVenues is the literal list of venues whose WebSockets the gateway
// proxies.
var wsVenues = map[string]wsVenue{
	binance.SpotName: {streams: binance.WSStreamUpstream, api: binance.WSAPIUpstream, apiPaths: []string{binance.WSAPIPath},
		streamPaths: []string{"/ws", "/stream"},
		wsapi:       func() exchange.WSAPI { return binance.NewWSAPI(false) },
		userStreams: true},
	binance.USDMName: {streams: binance.USDMWSStreamUpstream, api: binance.USDMWSAPIUpstream, apiPaths: []string{binance.USDMWSAPIPath},
		streamPaths: []string{"/ws", "/stream", "/public", "/market", "/private"},
		wsapi:       func() exchange.WSAPI { return binance.NewWSAPI(true) },
		userStreams: true},
	okx.Name: {streams: okx.WSUpstream, api: okx.WSUpstream, apiPaths: []string{okx.WSPrivate, okx.WSBusiness},
		streamPaths: []string{"/ws/v5/public"},
		wsapi:       func() exchange.WSAPI { return okx.NewWSAPI() }},
	bybit.Name: {streams: bybit.WSUpstream, api: bybit.WSUpstream, apiPaths: []string{bybit.WSPrivate, bybit.WSTrade},
		streamPaths: []string{"/v5/public"},
		wsapi:       func() exchange.WSAPI { return bybit.NewWSAPI() }},
	hyperliquid.Name: {apiPaths: []string{hyperliquid.WSPath},
		wsapiOf: func(v exchange.Venue) (exchange.WSAPI, error) { return hyperliquid.NewWSAPI(v) }},
}

// wsRoutes builds the WebSocket routes for the configured venues. A venue
// whose REST upstream is a loopback simulator (http://127.0.0.1:port) gets
// its WebSockets from the same simulator (ws://127.0.0.1:port).
func wsRoutes(routes []Route, built map[string]exchange.Venue) ([]wsgateway.Route, error) {
	var out []wsgateway.Route
	for _, r := range routes {
		wv, ok := wsVenues[r.Def.Name]
		if !ok {
			continue
		}
		streams, api := wv.streams, wv.api
		if streams == "" && r.Upstream != nil {
			streams, api = "wss://"+r.Upstream.Host, "wss://"+r.Upstream.Host
		} else if streams == "" {
			u, err := url.Parse(r.Def.Upstream)
			if err != nil {
				return nil, err
			}
			streams, api = "wss://"+u.Host, "wss://"+u.Host
		}
		if r.Upstream != nil && r.Upstream.Scheme == "http" {
			sim := "ws://" + r.Upstream.Host
			streams, api = sim, sim
		}
		su, err := url.Parse(streams)
		if err != nil {
			return nil, err
		}
		au, err := url.Parse(api)
		if err != nil {
			return nil, err
		}
		var wsapi exchange.WSAPI
		if wv.wsapiOf != nil {
			if wsapi, err = wv.wsapiOf(built[r.Def.Name]); err != nil {
				return nil, err
			}
		} else {
			wsapi = wv.wsapi()
		}
		out = append(out, wsgateway.Route{Venue: r.Def.Name, Exchange: r.Def.Exchange, Streams: su, API: au,
			APIPaths: wv.apiPaths, StreamPaths: wv.streamPaths, WSAPI: wsapi, UserStreams: wv.userStreams})
	}
	return out, nil
}
