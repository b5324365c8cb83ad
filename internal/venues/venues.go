// Package venues is the literal list of exchange venues keywarden supports:
// how to build each one, its real and testnet upstreams, whose keys it signs
// with, the shape of its client credentials, and its simulator. The binary
// and the end-to-end tests wire venues from this one list.
package venues

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/bitget"
	"github.com/keywarden/keywarden/internal/exchange/bitmex"
	"github.com/keywarden/keywarden/internal/exchange/bybit"
	"github.com/keywarden/keywarden/internal/exchange/coinbase"
	"github.com/keywarden/keywarden/internal/exchange/deribit"
	"github.com/keywarden/keywarden/internal/exchange/gate"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/exchange/kraken"
	"github.com/keywarden/keywarden/internal/exchange/krakenfutures"
	"github.com/keywarden/keywarden/internal/exchange/kucoin"
	"github.com/keywarden/keywarden/internal/exchange/okx"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// Def is one venue keywarden knows: how to build it, where it lives,
// whose keys it signs with, and its simulator.
type Def struct {
	Name     string
	Exchange string // the vault's exchange name for its keys
	Upstream string // the real API host
	Testnet  string // the venue's testnet or demo host, if it has one
	Build    func(*url.URL) exchange.Venue
	Format   client.Format
	// Simulator returns the venue's simulator; venues that share one
	// (binance and binance-usdm) serve both from the same handler.
	Simulator func(*sim.Kit) http.Handler
	// CCXT is ccxt's id for the venue, for end-to-end tests and docs
	// (bitmex is only in ccxt 4.5.82 and older, the "ccxt-bitmex" module).
	CCXT string
}

// Known is the literal list of venues.
func Known() []Def {
	return []Def{
		{Name: "binance", CCXT: "binance", Exchange: "binance", Upstream: binance.DefaultUpstream, Testnet: binance.TestnetUpstream,
			Build: binance.Spot, Simulator: binance.SimulatorWithWS},
		{Name: "binance-usdm", CCXT: "binanceusdm", Exchange: "binance", Upstream: binance.USDMUpstream, Testnet: binance.USDMTestnetUpstream,
			Build: binance.USDM, Simulator: binance.SimulatorWithWS},
		{Name: "coinbase", CCXT: "coinbase", Exchange: "coinbase", Upstream: coinbase.DefaultUpstream, Testnet: coinbase.TestnetUpstream,
			Format: client.Format{KeyNamePrefix: "organizations/keywarden/apiKeys/"},
			Build:  coinbase.New, Simulator: func(k *sim.Kit) http.Handler { return coinbase.NewSimulator(k) }},
		{Name: "kraken", CCXT: "kraken", Exchange: "kraken", Upstream: kraken.DefaultUpstream, Format: client.Format{Base64Secret: true},
			Build: kraken.New, Simulator: func(k *sim.Kit) http.Handler { return kraken.NewSimulator(k) }},
		{Name: "kraken-futures", CCXT: "krakenfutures", Exchange: "kraken-futures", Upstream: krakenfutures.DefaultUpstream, Testnet: krakenfutures.TestnetUpstream,
			Format: client.Format{Base64Secret: true},
			Build:  krakenfutures.New, Simulator: func(k *sim.Kit) http.Handler { return krakenfutures.NewSimulator(k) }},
		{Name: "okx", CCXT: "okx", Exchange: "okx", Upstream: okx.DefaultUpstream, Format: client.Format{Passphrase: true},
			Build: okx.New, Simulator: okx.SimulatorWithWS},
		{Name: "bybit", CCXT: "bybit", Exchange: "bybit", Upstream: bybit.DefaultUpstream, Testnet: bybit.TestnetUpstream,
			Build: bybit.New, Simulator: bybit.SimulatorWithWS},
		{Name: "bitget", CCXT: "bitget", Exchange: "bitget", Upstream: bitget.DefaultUpstream, Format: client.Format{Passphrase: true},
			Build: bitget.New, Simulator: func(k *sim.Kit) http.Handler { return bitget.NewSimulator(k) }},
		{Name: "kucoin", CCXT: "kucoin", Exchange: "kucoin", Upstream: kucoin.DefaultUpstream, Format: client.Format{Passphrase: true},
			Build: kucoin.New, Simulator: func(k *sim.Kit) http.Handler { return kucoin.NewSimulator(k) }},
		{Name: "gate", CCXT: "gate", Exchange: "gate", Upstream: gate.DefaultUpstream, Testnet: gate.TestnetUpstream,
			Build: gate.New, Simulator: func(k *sim.Kit) http.Handler { return gate.NewSimulator(k) }},
		{Name: "deribit", CCXT: "deribit", Exchange: "deribit", Upstream: deribit.DefaultUpstream, Testnet: deribit.TestnetUpstream,
			Build: deribit.New, Simulator: func(k *sim.Kit) http.Handler { return deribit.NewSimulator(k) }},
		{Name: "bitmex", CCXT: "bitmex", Exchange: "bitmex", Upstream: bitmex.DefaultUpstream, Testnet: bitmex.TestnetUpstream,
			Build: bitmex.New, Simulator: func(k *sim.Kit) http.Handler { return bitmex.NewSimulator(k) }},
		{Name: "hyperliquid", CCXT: "hyperliquid", Exchange: "hyperliquid", Upstream: hyperliquid.DefaultUpstream, Testnet: hyperliquid.TestnetUpstream,
			Build: hyperliquid.New, Simulator: hyperliquid.SimulatorWithWS},
	}
}

// ByName returns the known venue called name.
func ByName(name string) (Def, error) {
	var names []string
	for _, v := range Known() {
		if v.Name == name {
			return v, nil
		}
		names = append(names, v.Name)
	}
	sort.Strings(names)
	return Def{}, fmt.Errorf("unknown venue %q (known: %s)", name, strings.Join(names, ", "))
}
