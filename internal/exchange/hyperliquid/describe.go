package hyperliquid

import (
	"encoding/json"
	"strconv"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
)

type describer struct{}

// tradeActions are L1 actions that place, change or cancel orders or
// positions of the signer's own account.
var tradeActions = map[string]bool{
	"order": true, "cancel": true, "cancelByCloid": true, "modify": true, "batchModify": true,
	"scheduleCancel": true, "updateLeverage": true, "updateIsolatedMargin": true, "twapOrder": true,
	"twapCancel": true, "noop": true,
}

// transferActions move funds between the account's own wallets,
// sub-accounts and vaults.
var transferActions = map[string]bool{
	"usdClassTransfer": true, "subAccountTransfer": true, "subAccountSpotTransfer": true, "vaultTransfer": true,
}

// withdrawActions send funds to another address.
var withdrawActions = map[string]bool{"withdraw3": true, "usdSend": true, "spotSend": true, "sendAsset": true}

// Describe classifies a request. POST /info (or /c/<client id>/info) is public. POST /exchange
// actions: orders and cancels are trade; own-account transfers are
// transfer; withdraw3, usdSend, spotSend and sendAsset (funds to another
// address) are withdraw; approveAgent and everything else account-admin.
func (describer) Describe(r *exchange.Request) (exchange.Call, error) {
	c := exchange.Call{Method: r.Method, Path: r.Path}
	if isInfo, valid := clientInfo(r.Path); isInfo && valid {
		c.Path = "/info"
	}
	if c.Path == "/info" {
		if r.Method != "POST" {
			return c, exchange.Errorf(exchange.ErrNotFound, "info is POST /info")
		}
		v, err := eip712.DecodeOrdered(r.Body)
		o, ok := v.(*eip712.Object)
		if err != nil || !ok {
			return c, exchange.Errorf(exchange.ErrBadRequest, "info body must be a JSON object")
		}
		t, _ := stringMember(o, "type")
		c.Endpoint, c.Scope = "info "+t, exchange.ScopePublic
		return c, nil
	}
	if _, rest, ok := splitClient(r.Path); ok {
		c.Path = rest
	}
	if c.Path != "/exchange" {
		return c, exchange.Errorf(exchange.ErrNotFound, "unknown endpoint; use POST /info or POST /c/<client id>/exchange")
	}
	if r.Method != "POST" {
		return c, exchange.Errorf(exchange.ErrNotFound, "exchange is POST")
	}
	env, err := parseEnvelope(r.Body)
	if err != nil {
		return c, exchange.Errorf(exchange.ErrBadRequest, "%s", err.Error())
	}
	c.Endpoint = env.Type
	a := env.Action
	switch {
	case tradeActions[env.Type]:
		c.Scope = exchange.ScopeTrade
		orders, err := describeOrders(env.Type, a)
		if err != nil {
			return c, exchange.Errorf(exchange.ErrBadRequest, "%s: %s", env.Type, err.Error())
		}
		c.Orders = orders
	case transferActions[env.Type]:
		c.Scope = exchange.ScopeTransfer
		c.Transfer = describeTransfer(a)
	case withdrawActions[env.Type]:
		c.Scope = exchange.ScopeWithdraw
		c.Transfer = describeTransfer(a)
		// withdraw3 leaves through the Arbitrum bridge; the others pay
		// another Hyperliquid address.
		c.Transfer.Network = "hyperliquid"
		if env.Type == "withdraw3" {
			c.Transfer.Network = "arbitrum"
		}
	default:
		c.Scope = exchange.ScopeAccountAdmin
	}
	return c, nil
}

func describeTransfer(a *eip712.Object) *exchange.Transfer {
	t := &exchange.Transfer{Asset: "USDC"}
	if s, ok := stringMember(a, "token"); ok {
		t.Asset = s
	}
	if s, ok := stringMember(a, "destination"); ok {
		t.Address = s
	}
	for _, k := range []string{"subAccountUser", "vaultAddress"} {
		if s, ok := stringMember(a, k); ok {
			t.Destination = s
		}
	}
	if s, ok := stringMember(a, "amount"); ok {
		t.Amount = exchange.ParseFloat(s)
	}
	if v, ok := a.Get("usd"); ok {
		// subAccountTransfer and vaultTransfer carry usd as an integer
		// of micro-USD (1 USD = 1e6), as the SDK's float_to_usd_int makes it.
		if n, ok := v.(json.Number); ok {
			f, _ := n.Float64()
			t.Amount = f / 1e6
		}
	}
	return t
}

func describeOrders(typ string, a *eip712.Object) ([]exchange.Order, error) {
	switch typ {
	case "order":
		v, _ := a.Get("orders")
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, errString("orders must be a non-empty array")
		}
		out := make([]exchange.Order, 0, len(list))
		for _, it := range list {
			o, err := orderWire(it, exchange.ActionNew)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		return out, nil
	case "modify":
		v, _ := a.Get("order")
		o, err := orderWire(v, exchange.ActionAmend)
		if err != nil {
			return nil, err
		}
		return []exchange.Order{o}, nil
	case "batchModify":
		v, _ := a.Get("modifies")
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, errString("modifies must be a non-empty array")
		}
		var out []exchange.Order
		for _, it := range list {
			m, ok := it.(*eip712.Object)
			if !ok {
				return nil, errString("modifies must hold objects")
			}
			ov, _ := m.Get("order")
			o, err := orderWire(ov, exchange.ActionAmend)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		return out, nil
	case "cancel", "cancelByCloid":
		v, _ := a.Get("cancels")
		list, ok := v.([]any)
		if !ok {
			return nil, errString("cancels must be an array")
		}
		var out []exchange.Order
		for _, it := range list {
			m, ok := it.(*eip712.Object)
			if !ok {
				return nil, errString("cancels must hold objects")
			}
			o := exchange.Order{Action: exchange.ActionCancel}
			for _, k := range []string{"a", "asset"} {
				if n, ok := m.Get(k); ok {
					o.Symbol = numString(n)
				}
			}
			if c, ok := stringMember(m, "cloid"); ok {
				o.ClientOrderID = c
			}
			out = append(out, o)
		}
		return out, nil
	case "twapOrder":
		v, _ := a.Get("twap")
		m, ok := v.(*eip712.Object)
		if !ok {
			return nil, errString("twap must be an object")
		}
		o := exchange.Order{Action: exchange.ActionNew, Type: "twap"}
		if n, ok := m.Get("a"); ok {
			o.Symbol = numString(n)
		}
		if b, ok := m.Get("b"); ok {
			o.Side = side(b)
		}
		if s, ok := stringMember(m, "s"); ok {
			o.Quantity = exchange.ParseFloat(s)
		}
		if r, ok := m.Get("r"); ok {
			o.ReduceOnly = r == true
		}
		return []exchange.Order{o}, nil
	}
	return nil, nil
}

// orderWire reads an order wire {a, b, p, s, r, t[, c]}. Symbol is the
// asset index as Hyperliquid numbers it ("0" is BTC on mainnet perps).
func orderWire(v any, act exchange.Action) (exchange.Order, error) {
	m, ok := v.(*eip712.Object)
	if !ok {
		return exchange.Order{}, errString("an order must be an object")
	}
	o := exchange.Order{Action: act}
	a, ok := m.Get("a")
	if !ok {
		return o, errString("order asset a missing")
	}
	o.Symbol = numString(a)
	b, ok := m.Get("b")
	if !ok {
		return o, errString("order side b missing")
	}
	o.Side = side(b)
	ps, ok1 := stringMember(m, "p")
	ss, ok2 := stringMember(m, "s")
	if !ok1 || !ok2 || !exchange.PlainDecimal(ps, false) || !exchange.PlainDecimal(ss, false) {
		return o, errString("order price p and size s must be decimal strings")
	}
	o.Price, o.Quantity = exchange.ParseFloat(ps), exchange.ParseFloat(ss)
	o.PriceText, o.QuantityText = ps, ss
	o.Notional = o.Price * o.Quantity
	if r, ok := m.Get("r"); ok {
		o.ReduceOnly = r == true
	}
	o.Type = "limit"
	if t, ok := m.Get("t"); ok {
		if to, ok := t.(*eip712.Object); ok && len(to.Keys) == 1 {
			o.Type = to.Keys[0]
		}
	}
	if c, ok := stringMember(m, "c"); ok {
		o.ClientOrderID = c
	}
	return o, nil
}

func side(b any) exchange.Side {
	if b == true {
		return exchange.Buy
	}
	return exchange.Sell
}

func numString(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case string:
		return x
	}
	return strconv.Quote("?")
}

type errString string

func (e errString) Error() string { return string(e) }
