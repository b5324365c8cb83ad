package coinbase

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestPriceFromSimulatorTicker(t *testing.T) {
	kit := sim.NewKit()
	kit.SetPrice("BTC-USD", 50123.5)
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := New(u).Prices
	if p == nil {
		t.Fatal("New().Prices = nil, want the ticker reader")
	}
	r := p.TickerRequest("BTC-USD")
	resp, err := http.Get(srv.URL + r.Path + "?" + r.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got, err := p.ParsePrice("BTC-USD", resp.StatusCode, body)
	if err != nil || got != 50123.5 {
		t.Errorf("ParsePrice(BTC-USD) = %v, %v; want 50123.5 (body %s)", got, err, body)
	}
	if l := kit.Log(); len(l) != 1 || l[0].APIKey != "" || l[0].Error != "" {
		t.Errorf("simulator log = %+v, want one public request", l)
	}
}

func TestTickerRequest(t *testing.T) {
	tests := []struct {
		symbol, want string
	}{
		{"BTC-USD", "/api/v3/brokerage/market/products/BTC-USD/ticker"},
		{"BIT-31JAN25-CDE", "/api/v3/brokerage/market/products/BIT-31JAN25-CDE/ticker"},
		{"", ""},
		{"BTC/USD", ""},
		{"..", ""},
		{"BTC-USD?x=1", ""},
		{"BTC USD", ""},
		{"BTC-USD\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.symbol, func(t *testing.T) {
			r := prices{}.TickerRequest(tt.symbol)
			got := ""
			if r != nil {
				got = r.Method + " " + r.Path
				if r.RawQuery != "limit=1" {
					t.Errorf("TickerRequest(%q).RawQuery = %q, want limit=1", tt.symbol, r.RawQuery)
				}
			}
			want := ""
			if tt.want != "" {
				want = "GET " + tt.want
			}
			if got != want {
				t.Errorf("TickerRequest(%q) = %q, want %q", tt.symbol, got, want)
			}
		})
	}
}

func TestParsePriceRejects(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"status", 500, `{"trades":[{"product_id":"BTC-USD","price":"1"}]}`},
		{"other product", 200, `{"trades":[{"product_id":"ETH-USD","price":"1"}]}`},
		{"no trades", 200, `{"trades":[],"best_bid":"1","best_ask":"1"}`},
		{"nan", 200, `{"trades":[{"product_id":"BTC-USD","price":"NaN"}]}`},
		{"zero", 200, `{"trades":[{"product_id":"BTC-USD","price":"0"}]}`},
		{"negative", 200, `{"trades":[{"product_id":"BTC-USD","price":"-5"}]}`},
		{"not json", 200, `nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := (prices{}).ParsePrice("BTC-USD", tt.status, []byte(tt.body)); err == nil {
				t.Errorf("ParsePrice(%d, %s) = %v, nil; want an error", tt.status, tt.body, got)
			}
		})
	}
}
