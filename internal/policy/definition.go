package policy

import "time"

// Definition is one policy as written in TOML, under a [policy.NAME] table.
// Field names in TOML are the snake_case tags below. A zero field means "no
// restriction from this rule", except Scopes, whose zero value means read
// only. Compile validates a Definition; nothing here is trusted before that.
type Definition struct {
	// Scopes are the scopes the policy allows. Public calls are always
	// allowed. Empty means read only. account-admin is allowed only when
	// listed; no scope implies another.
	Scopes []string `toml:"scopes"`
	// Venues limits the venues (exact names, any case). Empty means any.
	Venues []string `toml:"venues"`
	// Endpoints are globs over the described endpoint ("POST /api/v3/*",
	// "private/buy"), matched case-sensitively. Empty means any endpoint
	// the scopes allow.
	Endpoints []string `toml:"endpoints"`
	// Symbols allow and DenySymbols forbid symbols, as globs in the venue's
	// spelling ("BTCUSDT", "*USDT", "BTC-*"), ASCII case-insensitive.
	// DenySymbols wins. Empty Symbols means any symbol.
	Symbols     []string `toml:"symbols"`
	DenySymbols []string `toml:"deny_symbols"`
	// OrderTypes (limit, market, ...) and Sides (buy, sell) allowed for new
	// and amended orders. Empty means any.
	OrderTypes []string `toml:"order_types"`
	Sides      []string `toml:"sides"`
	// MaxOrderQty caps each order's base quantity; MaxOrderNotional caps
	// each order's value in the quote currency. Zero means no cap.
	MaxOrderQty      float64 `toml:"max_order_qty"`
	MaxOrderNotional float64 `toml:"max_order_notional"`
	// NotionalCurrency is the quote currency the notional caps are written
	// in ("USDT"). It only labels messages; keep the symbols of a policy with
	// notional caps to one quote currency.
	NotionalCurrency string `toml:"notional_currency"`
	// Windows are rolling caps on notional and order count.
	Windows []WindowDef `toml:"windows"`
	// MaxOpenOrders caps the resting orders of one credential. Zero means no
	// cap.
	MaxOpenOrders int `toml:"max_open_orders"`
	// PriceBandPct denies limit orders priced more than this many percent
	// away from the reference price. Zero means no band.
	PriceBandPct float64 `toml:"price_band_pct"`
	// TradingHours restricts when orders may be placed and funds moved.
	// Empty means any time.
	TradingHours []HoursDef `toml:"trading_hours"`
	// SourceIPs restricts the caller's address to these prefixes or
	// addresses ("10.0.0.0/8", "192.0.2.7"). Empty means any.
	SourceIPs []string `toml:"source_ips"`
	// Withdraw is the withdrawal address allowlist.
	Withdraw WithdrawDef `toml:"withdraw"`
	// Expressions are CEL expressions that must all return true.
	Expressions []ExprDef `toml:"expressions"`
	// UnknownPrice says what happens when a rule needs a reference price and
	// none is known: "deny" (the default) or "allow".
	UnknownPrice string `toml:"unknown_price"`
}

// WindowDef is a rolling window cap. Per is "credential" (the default: each
// client credential has its own budget) or "key" (all credentials that use
// one exchange key through this policy share it).
type WindowDef struct {
	Duration    string  `toml:"duration"`
	MaxNotional float64 `toml:"max_notional"`
	MaxOrders   int     `toml:"max_orders"`
	Per         string  `toml:"per"`
}

// HoursDef is a span of allowed hours on some days. From and To are "HH:MM"
// in TZ (an IANA name, default UTC); To before From spans midnight, and the
// span belongs to the day it starts on. Days are mon..sun; empty means
// every day.
type HoursDef struct {
	Days []string `toml:"days"`
	From string   `toml:"from"`
	To   string   `toml:"to"`
	TZ   string   `toml:"tz"`
}

// WithdrawDef is the withdrawal allowlist. A withdrawal is allowed only to a
// listed address whose asset, network, address and memo all match, up to
// its MaxAmount, and only once Cooldown has passed since the address was
// added.
type WithdrawDef struct {
	Addresses []AddressDef `toml:"addresses"`
	Cooldown  string       `toml:"cooldown"`
}

// AddressDef is one allowed withdrawal destination. Address matches
// exactly, except EVM addresses (0x and 40 hex digits), which match in any
// case. Memo must match exactly; an empty Memo matches only a withdrawal
// without one. MaxAmount zero means no per-withdrawal cap. AddedAt is when
// the address was added, for the cool-down.
type AddressDef struct {
	Asset     string    `toml:"asset"`
	Network   string    `toml:"network"`
	Address   string    `toml:"address"`
	Memo      string    `toml:"memo"`
	MaxAmount float64   `toml:"max_amount"`
	AddedAt   time.Time `toml:"added_at"`
}

// ExprDef is a named CEL expression that must evaluate to true for the call
// to be allowed.
type ExprDef struct {
	Name string `toml:"name"`
	Expr string `toml:"expr"`
}
