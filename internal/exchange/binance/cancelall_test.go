package binance

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	tests := []struct {
		name  string
		build func(*url.URL) exchange.Venue
		c     interface {
			CancelAll(context.Context, exchange.Doer, *exchange.Credential) (exchange.CancelReport, error)
		}
		order string
	}{
		{"spot", Spot, SpotCanceller{}, "/api/v3/order"},
		{"usdm", USDM, FuturesCanceller{}, "/fapi/v1/order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kit := sim.NewKit()
			key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "k-" + tt.name, Secret: exchange.Secret("s3cret")}
			other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "other-" + tt.name, Secret: exchange.Secret("s3cret2")}
			for _, k := range []*exchange.Credential{key, other} {
				kit.AddAccount(sim.Account{Key: *k, Permissions: map[string]bool{"read": true, "trade": true}})
			}
			srv := httptest.NewServer(NewSimulator(kit))
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			d := &exchange.HTTPDoer{Venue: tt.build(u), Client: srv.Client()}
			ctx := context.Background()
			place := func(k *exchange.Credential, sym string) {
				t.Helper()
				q := "symbol=" + sym + "&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=100"
				st, body, err := d.Do(ctx, &exchange.Request{Method: http.MethodPost, Path: tt.order, RawQuery: q, Header: http.Header{}}, k)
				if err != nil || st != http.StatusOK {
					t.Fatalf("place %s: %d %s %v", sym, st, body, err)
				}
			}
			place(key, "BTCUSDT")
			place(key, "BTCUSDT")
			place(key, "ETHUSDT")
			place(other, "BTCUSDT")
			rep, err := tt.c.CancelAll(ctx, d, key)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(exchange.CancelReport{Cancelled: 3, Scopes: []string{"BTCUSDT", "ETHUSDT"}}, rep); d != "" {
				t.Errorf("report (-want +got):\n%s", d)
			}
			if n := len(kit.OpenOrders(key.APIKey)); n != 0 {
				t.Errorf("%d open orders left, want 0", n)
			}
			if n := len(kit.OpenOrders(other.APIKey)); n != 1 {
				t.Errorf("another key's open orders = %d, want 1 (untouched)", n)
			}
			// Nothing left: a second sweep cancels nothing and succeeds.
			if rep, err := tt.c.CancelAll(ctx, d, key); err != nil || rep.Cancelled != 0 {
				t.Errorf("second sweep = %+v, %v", rep, err)
			}
			// A wrong secret is the venue's refusal, reported.
			bad := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: key.APIKey, Secret: exchange.Secret("wrong")}
			if _, err := tt.c.CancelAll(ctx, d, bad); err == nil {
				t.Error("CancelAll with a bad signature = nil, want the venue's refusal")
			}
		})
	}
}
