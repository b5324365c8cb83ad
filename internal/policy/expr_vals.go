package policy

import (
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/keywarden/keywarden/internal/exchange"
)

// The fields of call and of each of call.orders, as expressions see them.
var (
	callKeys  = []string{"venue", "endpoint", "method", "path", "scope", "orders", "transfer"}
	orderKeys = []string{"action", "symbol", "side", "type", "qty", "price", "quote_qty", "notional", "reduce_only"}
)

// lazyMap is call, or one order of call.orders, as a CEL map whose fields
// are converted only when an expression reads them: a check that reads
// o.notional of a one-order batch converts one number, not a whole map per
// expression. Field reads (Find, Get, Contains, Size) are served directly;
// everything else (iteration, equality, conversion) goes through the plain
// map it stands for, so it behaves exactly like that map.
type lazyMap struct {
	vars     *exprVars       // call
	order    *exchange.Order // one order
	notional float64         // the order's notional, 0 when unknown
}

var _ traits.Mapper = (*lazyMap)(nil)

func (m *lazyMap) keys() []string {
	if m.vars != nil {
		return callKeys
	}
	return orderKeys
}

func (m *lazyMap) field(key string) (ref.Val, bool) {
	if m.vars != nil {
		return m.vars.callField(key)
	}
	o := m.order
	switch key {
	case "action":
		return types.String(o.Action), true
	case "symbol":
		return types.String(o.Symbol), true
	case "side":
		return types.String(o.Side), true
	case "type":
		return types.String(o.Type), true
	case "qty":
		return types.Double(o.Quantity), true
	case "price":
		return types.Double(o.Price), true
	case "quote_qty":
		return types.Double(o.QuoteQuantity), true
	case "notional":
		return types.Double(m.notional), true
	case "reduce_only":
		return types.Bool(o.ReduceOnly), true
	}
	return nil, false
}

// callField reads one field of call; orders and transfer are built once
// per check.
func (v *exprVars) callField(key string) (ref.Val, bool) {
	in := v.c.in
	call := &in.Call
	switch key {
	case "venue":
		return types.String(in.venue()), true
	case "endpoint":
		return types.String(call.Endpoint), true
	case "method":
		return types.String(call.Method), true
	case "path":
		return types.String(call.Path), true
	case "scope":
		return types.String(call.Scope), true
	case "orders":
		if v.orders == nil {
			v.orders = v.ordersList()
		}
		return v.orders, true
	case "transfer":
		if v.transfer == nil {
			v.transfer = transferMap(call.Transfer)
		}
		return v.transfer, true
	}
	return nil, false
}

func (v *exprVars) ordersList() ref.Val {
	c := v.c
	orders := c.in.Call.Orders
	maps := make([]lazyMap, len(orders))
	elems := make([]ref.Val, len(orders))
	for i := range orders {
		maps[i].order = &orders[i]
		if val := c.value(i); val.known {
			maps[i].notional = float64(val.notional) / unitScale
		}
		elems[i] = &maps[i]
	}
	return types.NewRefValList(types.DefaultTypeAdapter, elems)
}

// transferMap is call.transfer: empty when the call moves no funds.
func transferMap(t *exchange.Transfer) ref.Val {
	m := map[string]any{}
	if t != nil {
		m = map[string]any{
			"asset":       t.Asset,
			"amount":      t.Amount,
			"address":     t.Address,
			"network":     t.Network,
			"memo":        t.Memo,
			"destination": t.Destination,
		}
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
}

// plain is the map as an ordinary CEL map.
func (m *lazyMap) plain() traits.Mapper {
	keys := m.keys()
	out := make(map[ref.Val]ref.Val, len(keys))
	for _, k := range keys {
		out[types.String(k)], _ = m.field(k)
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, out)
}

// Find returns the field named by key.
func (m *lazyMap) Find(key ref.Val) (ref.Val, bool) {
	s, ok := key.(types.String)
	if !ok {
		return m.plain().Find(key)
	}
	return m.field(string(s))
}

// Get returns the field named by index, or the plain map's error.
func (m *lazyMap) Get(index ref.Val) ref.Val {
	if f, ok := m.Find(index); ok {
		return f
	}
	return m.plain().Get(index)
}

// Contains says whether index names a field.
func (m *lazyMap) Contains(index ref.Val) ref.Val {
	if _, ok := index.(types.String); !ok {
		return m.plain().Contains(index)
	}
	_, ok := m.Find(index)
	return types.Bool(ok)
}

// Size is the number of fields.
func (m *lazyMap) Size() ref.Val { return types.Int(len(m.keys())) }

// Iterator iterates the plain map's keys.
func (m *lazyMap) Iterator() traits.Iterator { return m.plain().Iterator() }

// ConvertToNative converts the plain map.
func (m *lazyMap) ConvertToNative(t reflect.Type) (any, error) { return m.plain().ConvertToNative(t) }

// ConvertToType keeps a map a map and converts the plain map otherwise.
func (m *lazyMap) ConvertToType(t ref.Type) ref.Val {
	if t == types.MapType {
		return m
	}
	return m.plain().ConvertToType(t)
}

// Equal compares the plain maps.
func (m *lazyMap) Equal(other ref.Val) ref.Val {
	if o, ok := other.(*lazyMap); ok {
		other = o.plain()
	}
	return m.plain().Equal(other)
}

// Type is map.
func (m *lazyMap) Type() ref.Type { return types.MapType }

// Value is the plain map's value.
func (m *lazyMap) Value() any { return m.plain().Value() }
