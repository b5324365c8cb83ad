package hyperliquid

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// TestCancelAllAgainstTheSimulator: an agent key cancels every open order
// of its master account (perpetuals and spot, more than one cancel action
// of 100), signed through the venue's Signer; another account keeps its
// orders; a second sweep cancels nothing; a wallet that is no approved
// agent is refused by the venue; a master key cancels its own account's.
func TestCancelAllAgainstTheSimulator(t *testing.T) {
	kit := sim.NewKit()
	s := NewSimulator(kit)
	m1, m2, a1, a2 := genKey(t), genKey(t), genKey(t), genKey(t)
	for _, m := range []string{m1.Address().Hex(), m2.Address().Hex()} {
		kit.AddAccount(sim.Account{Key: exchange.Credential{APIKey: m}})
	}
	if err := s.ApproveAgent(m1.Address(), a1.Address(), "bot"); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproveAgent(m2.Address(), a2.Address(), "bot"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	ctx := context.Background()
	key, other := vaultCred(a1, m1.Address()), vaultCred(a2, m2.Address())

	// place sends one order action of n resting orders on asset.
	place := func(k *exchange.Credential, asset, n int) {
		t.Helper()
		orders := make([]string, n)
		for i := range orders {
			orders[i] = fmt.Sprintf(`{"a":%d,"b":true,"p":"%d","s":"0.1","r":false,"t":{"limit":{"tif":"Gtc"}}}`, asset, 100+i)
		}
		action := `{"type":"order","orders":[` + strings.Join(orders, ",") + `],"grouping":"na"}`
		st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodPost, Path: "/exchange", Body: unsigned(action, time.Now().UnixMilli()),
			Header: http.Header{"Content-Type": {"application/json"}}}, k)
		if err != nil || ExchangeOK(st, body) != nil || strings.Count(string(body), "resting") != n {
			t.Fatalf("place %d on asset %d: %d %s %v", n, asset, st, body, err)
		}
	}
	place(key, 0, 60)    // BTC perpetual
	place(key, 1, 40)    // ETH perpetual
	place(key, 10000, 5) // PURR/USDC spot
	place(other, 0, 2)   // another account
	place(other, 10001, 1)
	master1 := m1.Address().Hex()
	master2 := m2.Address().Hex()

	// A wallet that is no approved agent of the master: the venue
	// recovers an unknown signer and refuses; nothing is cancelled.
	stranger := vaultCred(genKey(t), m1.Address())
	if rep, err := (Canceller{}).CancelAll(ctx, d, stranger); err == nil || rep.Cancelled != 0 {
		t.Errorf("CancelAll by an unapproved wallet = %+v, %v; want the venue's refusal", rep, err)
	} else if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("refusal = %v, want the venue's message", err)
	}
	if n := len(kit.OpenOrders(master1)); n != 105 {
		t.Fatalf("open orders after a refused cancel = %d, want 105", n)
	}

	kit.ResetLog()
	rep, err := Canceller{}.CancelAll(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != 105 || !slices.Equal(rep.Scopes, []string{"BTC", "ETH", "PURR/USDC"}) {
		t.Errorf("report %+v, want 105 cancelled in BTC, ETH, PURR/USDC", rep)
	}
	if n := len(kit.OpenOrders(master1)); n != 0 {
		t.Errorf("%d open orders left, want 0", n)
	}
	if n := len(kit.OpenOrders(master2)); n != 3 {
		t.Errorf("another account's open orders = %d, want 3", n)
	}
	// Two cancel actions (100 + 5), each verified as signed by the agent
	// for its master.
	var actions []string
	for _, l := range kit.Log() {
		if l.Path == "/exchange" {
			if !l.Verified || !strings.EqualFold(l.APIKey, master1) {
				t.Errorf("cancel action not verified for the master: %+v", l)
			}
			actions = append(actions, string(l.Body))
		}
	}
	if len(actions) != 2 || strings.Count(actions[0], `"o":`) != 100 || strings.Count(actions[1], `"o":`) != 5 ||
		!strings.Contains(actions[1], `{"a":10000,"o":`) {
		t.Errorf("cancel actions:\n%s\nwant 100 then 5 cancels, spot as asset 10000", strings.Join(actions, "\n"))
	}

	if rep, err := (Canceller{}).CancelAll(ctx, d, key); err != nil || rep.Cancelled != 0 {
		t.Errorf("second sweep = %+v, %v", rep, err)
	}

	// The master wallet's own key cancels its account's orders too.
	masterKey := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: master2, Secret: exchange.Secret(m2.Hex())}
	if rep, err := (Canceller{}).CancelAll(ctx, d, masterKey); err != nil || rep.Cancelled != 3 {
		t.Errorf("master sweep = %+v, %v; want 3 cancelled", rep, err)
	}
	if n := len(kit.OpenOrders(master2)); n != 0 {
		t.Errorf("%d open orders left after the master's sweep, want 0", n)
	}
}

// TestCancelAllUnknownCoin: an open order whose coin neither meta nor
// spotMeta names is reported, not silently left.
func TestCancelAllUnknownCoin(t *testing.T) {
	e := newSimEnv(t)
	u, _ := url.Parse(e.srv.URL)
	d := &exchange.HTTPDoer{Venue: New(u), Client: e.srv.Client()}
	key := vaultCred(e.agent, e.master.Address())
	action := `{"type":"order","orders":[{"a":0,"b":true,"p":"100","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}},{"a":9999,"b":true,"p":"100","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}}],"grouping":"na"}`
	st, body, err := d.Do(context.Background(), &exchange.Request{Method: http.MethodPost, Path: "/exchange", Body: unsigned(action, time.Now().UnixMilli())}, key)
	if err != nil || ExchangeOK(st, body) != nil {
		t.Fatalf("place: %d %s %v", st, body, err)
	}
	rep, err := Canceller{}.CancelAll(context.Background(), d, key)
	if err == nil || !strings.Contains(err.Error(), "no asset id for 9999") || rep.Cancelled != 1 {
		t.Errorf("CancelAll = %+v, %v; want 1 cancelled and the unknown coin reported", rep, err)
	}
	if n := len(e.kit.OpenOrders(e.master.Address().Hex())); n != 1 {
		t.Errorf("open orders = %d, want the unknown coin's 1", n)
	}
}
