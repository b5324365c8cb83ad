package policy

import (
	"math/big"
	"strings"

	"github.com/keywarden/keywarden/internal/exchange"
)

// exactOver reports whether o's notional, computed exactly from the decimal
// text of its quantity and price, is over limit, and that notional as
// exact decimal text. It answers only for an order valued at its own limit
// price (not raised to a reference price) whose request gave both numbers
// as decimal text; otherwise it reports false and the float64 check stands.
func exactOver(o *exchange.Order, v *orderValue, limit units) (string, bool) {
	if o.QuantityText == "" || o.PriceText == "" || o.Contracts || o.Quantity <= 0 || o.Price <= 0 ||
		(v.refKnown && v.ref > o.Price) {
		return "", false
	}
	q, ok1 := new(big.Rat).SetString(o.QuantityText)
	pr, ok2 := new(big.Rat).SetString(o.PriceText)
	if !ok1 || !ok2 {
		return "", false
	}
	n := q.Mul(q, pr)
	if n.Cmp(big.NewRat(int64(limit), unitScale)) <= 0 {
		return "", false
	}
	return decimalText(n, fracDigits(o.QuantityText)+fracDigits(o.PriceText)), true
}

// fracDigits is the number of digits after the decimal point of s.
func fracDigits(s string) int {
	if _, frac, ok := strings.Cut(s, "."); ok {
		return len(frac)
	}
	return 0
}

// decimalText writes r, which has at most digits fraction digits, without
// trailing zeros.
func decimalText(r *big.Rat, digits int) string {
	s := r.FloatString(digits)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
