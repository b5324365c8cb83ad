package exchangetest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// Canceller is a venue's order canceller (its cancelall.go).
type Canceller interface {
	CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error)
}

// Order is one order placed through the venue's own order endpoint before
// the sweep.
type Order struct {
	Symbol string
	// Kind is what else the venue's Place needs to know, if anything:
	// Bybit's category, KuCoin's order path.
	Kind string
}

// Orders places n orders, cycling through symbols.
func Orders(n int, symbols ...string) []Order {
	out := make([]Order, n)
	for i := range out {
		out[i] = Order{Symbol: symbols[i%len(symbols)]}
	}
	return out
}

// CancelAllCase is one venue's cancel-all test against its simulator. The
// venue parts are passed in, so this package needs no venue package.
type CancelAllCase struct {
	Venue     func(upstream *url.URL) exchange.Venue
	Simulator func(kit *sim.Kit) http.Handler
	Canceller Canceller

	// Key is the key whose orders are cancelled; Other is another key on
	// the same venue, whose orders must stay. The simulator's accounts hold
	// them as they are, or, for a key with a PrivateKey, its public half.
	Key, Other *exchange.Credential
	// BadSignature is Key's API key with a wrong secret or private key.
	BadSignature *exchange.Credential
	// Unknown, if set, is a key the venue does not know.
	Unknown *exchange.Credential

	// Place is the request placing order o, the i-th placed (Key's orders
	// first, then Other's).
	Place func(o Order, i int) *exchange.Request
	// PlaceStatus is the status a placed order is answered with (default
	// 200); PlaceOK, if set, must be in the answer's body.
	PlaceStatus int
	PlaceOK     string
	// KeyOrders are placed with Key, OtherOrders with Other.
	KeyOrders, OtherOrders []Order

	// Cancelled is the count the first sweep must report; Scopes, if
	// not nil, the scopes it must report.
	Cancelled int
	Scopes    []string

	// Extra, if set, checks more after the first sweep (and before the
	// second).
	Extra func(t *testing.T, kit *sim.Kit, rep exchange.CancelReport)
}

// CheckCancelAll places c's orders on the venue's simulator through the
// venue's signer and cancels Key's: the report counts Key's orders, Key has
// none open after, Other keeps its orders, a second sweep cancels nothing,
// and the venue's refusal of a bad signature (and of an unknown key) is
// reported as an error.
func CheckCancelAll(t *testing.T, c CancelAllCase) {
	t.Helper()
	kit := sim.NewKit()
	for _, k := range []*exchange.Credential{c.Key, c.Other} {
		acct := *k
		if k.PrivateKey != nil {
			acct = exchange.Credential{Kind: k.Kind, APIKey: k.APIKey, PublicKey: k.PrivateKey.Public()}
		}
		kit.AddAccount(sim.Account{Key: acct, Permissions: map[string]bool{"read": true, "trade": true}})
	}
	srv := httptest.NewServer(c.Simulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: c.Venue(u), Client: srv.Client()}
	ctx := context.Background()

	wantStatus := c.PlaceStatus
	if wantStatus == 0 {
		wantStatus = http.StatusOK
	}
	i := 0
	place := func(k *exchange.Credential, o Order) {
		t.Helper()
		st, body, err := d.Do(ctx, c.Place(o, i), k)
		i++
		if err != nil || st != wantStatus || !bytes.Contains(body, []byte(c.PlaceOK)) {
			t.Fatalf("place %s: %d %s %v", o.Symbol, st, body, err)
		}
	}
	for _, o := range c.KeyOrders {
		place(c.Key, o)
	}
	for _, o := range c.OtherOrders {
		place(c.Other, o)
	}

	rep, err := c.Canceller.CancelAll(ctx, d, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != c.Cancelled || (c.Scopes != nil && !slices.Equal(rep.Scopes, c.Scopes)) {
		if c.Scopes != nil {
			t.Errorf("report %+v, want %d cancelled in %q", rep, c.Cancelled, c.Scopes)
		} else {
			t.Errorf("report %+v, want %d cancelled", rep, c.Cancelled)
		}
	}
	if n := len(kit.OpenOrders(c.Key.APIKey)); n != 0 {
		t.Errorf("%d open orders left, want 0", n)
	}
	if n := len(kit.OpenOrders(c.Other.APIKey)); n != len(c.OtherOrders) {
		t.Errorf("another key's open orders = %d, want %d (untouched)", n, len(c.OtherOrders))
	}
	if c.Extra != nil {
		c.Extra(t, kit, rep)
	}
	// Nothing left: a second sweep cancels nothing and succeeds.
	if rep, err := c.Canceller.CancelAll(ctx, d, c.Key); err != nil || rep.Cancelled != 0 {
		t.Errorf("second sweep = %+v, %v", rep, err)
	}
	// The venue's refusals are reported.
	if c.Unknown != nil {
		if _, err := c.Canceller.CancelAll(ctx, d, c.Unknown); err == nil {
			t.Error("CancelAll with an unknown key = nil, want the venue's refusal")
		}
	}
	if _, err := c.Canceller.CancelAll(ctx, d, c.BadSignature); err == nil {
		t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
	}
}

// WithSecret is a copy of k with secret s.
func WithSecret(k *exchange.Credential, s exchange.Secret) *exchange.Credential {
	c := *k
	c.Secret = s
	return &c
}
