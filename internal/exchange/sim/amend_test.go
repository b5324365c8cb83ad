package sim

import "testing"

// TestAmendOrder: only the owner's resting orders change; a zero size or
// price keeps the current one; canceled orders cannot be amended.
func TestAmendOrder(t *testing.T) {
	k := NewKit()
	o := k.PlaceOrder(Order{APIKey: "a", ClientOrderID: "c1", Symbol: "BTCUSDT", Quantity: 1, Price: 100})
	tests := []struct {
		name             string
		key, id, client  string
		qty, price       float64
		ok               bool
		wantQty, wantPrc float64
	}{
		{"by id, both", "a", o.ID, "", 2, 110, true, 2, 110},
		{"by client id, size only", "a", "", "c1", 3, 0, true, 3, 110},
		{"price only", "a", o.ID, "", 0, 90, true, 3, 90},
		{"another key's order", "b", o.ID, "", 9, 9, false, 3, 90},
		{"unknown order", "a", "nope", "", 9, 9, false, 3, 90},
	}
	for _, tt := range tests {
		got, ok := k.AmendOrder(tt.key, tt.id, tt.client, tt.qty, tt.price)
		if ok != tt.ok {
			t.Errorf("%s: AmendOrder ok = %v, want %v", tt.name, ok, tt.ok)
		}
		if ok && (got.Quantity != tt.wantQty || got.Price != tt.wantPrc) {
			t.Errorf("%s: amended to %v @ %v, want %v @ %v", tt.name, got.Quantity, got.Price, tt.wantQty, tt.wantPrc)
		}
		if cur := k.Orders("a")[0]; cur.Quantity != tt.wantQty || cur.Price != tt.wantPrc {
			t.Errorf("%s: book holds %v @ %v, want %v @ %v", tt.name, cur.Quantity, cur.Price, tt.wantQty, tt.wantPrc)
		}
	}
	k.CancelOrder("a", o.ID, "")
	if _, ok := k.AmendOrder("a", o.ID, "", 5, 5); ok {
		t.Error("a canceled order was amended")
	}
}
