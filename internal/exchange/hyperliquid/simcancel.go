package hyperliquid

import "strconv"

// The simulator's markets: perpetuals are numbered by their index in
// simPerps (asset 0 is BTC, as on mainnet), spot pairs by 10000 + their
// index in simSpot. Orders are kept under their asset id; openOrders names
// them by coin, as Hyperliquid does, and meta and spotMeta give the
// mapping back.
var (
	simPerps = []string{"BTC", "ETH", "ATOM", "MATIC", "DYDX", "SOL", "AVAX", "BNB"}
	simSpot  = []string{"PURR/USDC", "@1", "@2", "@3"}
)

// simCoin is the coin name of asset id asset (the id itself when the
// simulator has no such market).
func simCoin(asset string) string {
	n, err := strconv.Atoi(asset)
	switch {
	case err != nil || n < 0:
	case n < len(simPerps):
		return simPerps[n]
	case n >= 10000 && n-10000 < len(simSpot):
		return simSpot[n-10000]
	}
	return asset
}

// simMeta answers POST /info {"type":"meta"} and {"type":"spotMeta"}.
func simMeta(typ string) any {
	if typ == "meta" {
		universe := []any{}
		for _, name := range simPerps {
			universe = append(universe, map[string]any{"name": name, "szDecimals": 5, "maxLeverage": 50})
		}
		return map[string]any{"universe": universe, "marginTables": []any{}}
	}
	tokens := []any{map[string]any{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0, "isCanonical": true}}
	universe := []any{}
	for i, name := range simSpot {
		tokens = append(tokens, map[string]any{"name": "TOKEN" + strconv.Itoa(i+1), "szDecimals": 0, "weiDecimals": 5, "index": i + 1, "isCanonical": i == 0})
		universe = append(universe, map[string]any{"name": name, "tokens": []int{i + 1, 0}, "index": i, "isCanonical": i == 0})
	}
	return map[string]any{"tokens": tokens, "universe": universe}
}
