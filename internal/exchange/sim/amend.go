package sim

// AmendOrder changes the size and price of apiKey's resting (NEW) order
// with the given id or client order id, as venues amend: a zero qty or
// price keeps the current one. It returns a copy of the amended order.
func (k *Kit) AmendOrder(apiKey, id, clientID string, qty, price float64) (*Order, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, o := range k.orders {
		if o.APIKey != apiKey || o.Status != "NEW" {
			continue
		}
		if (id != "" && o.ID == id) || (clientID != "" && o.ClientOrderID == clientID) {
			if qty > 0 {
				o.Quantity = qty
			}
			if price > 0 {
				o.Price = price
			}
			c := *o
			return &c, true
		}
	}
	return nil, false
}
