package exchangetest

import (
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

// OrderTexts checks that the decimal texts a describer kept on each order
// of call say what its numbers say, and returns call with the texts
// cleared, for comparison with expectations that leave them out. Tests
// that care about the texts' spelling check them separately.
func OrderTexts(t testing.TB, call exchange.Call) exchange.Call {
	t.Helper()
	orders := make([]exchange.Order, len(call.Orders))
	copy(orders, call.Orders)
	for i := range orders {
		o := &orders[i]
		if o.QuantityText != "" && exchange.ParseFloat(o.QuantityText) != o.Quantity ||
			o.PriceText != "" && exchange.ParseFloat(o.PriceText) != o.Price {
			t.Errorf("order %d: texts %q × %q disagree with %v × %v", i, o.QuantityText, o.PriceText, o.Quantity, o.Price)
		}
		o.QuantityText, o.PriceText = "", ""
	}
	if call.Orders != nil {
		call.Orders = orders
	}
	return call
}
