package sim

import "sort"

// CancelAll cancels apiKey's open (NEW) orders whose symbol keep accepts
// (every order when keep is nil) and returns them, oldest first.
func (k *Kit) CancelAll(apiKey string, keep func(symbol string) bool) []Order {
	k.mu.Lock()
	var out []Order
	for _, o := range k.orders {
		if o.APIKey != apiKey || o.Status != "NEW" || (keep != nil && !keep(o.Symbol)) {
			continue
		}
		o.Status = "CANCELED"
		out = append(out, *o)
	}
	k.mu.Unlock()
	// Ids are increasing decimal numbers: shorter is older.
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].ID) != len(out[j].ID) {
			return len(out[i].ID) < len(out[j].ID)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// OpenOrders returns apiKey's open (NEW) orders, oldest first.
func (k *Kit) OpenOrders(apiKey string) []Order {
	var out []Order
	for _, o := range k.Orders(apiKey) {
		if o.Status == "NEW" {
			out = append(out, o)
		}
	}
	return out
}
