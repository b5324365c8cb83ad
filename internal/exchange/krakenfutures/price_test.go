package krakenfutures

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestPriceFromSimulatorTicker(t *testing.T) {
	kit := sim.NewKit()
	kit.SetPrice("PF_XBTUSD", 50123.5)
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	p := New(u).Prices
	if p == nil {
		t.Fatal("New().Prices = nil, want the ticker reader")
	}
	r := p.TickerRequest("PF_XBTUSD")
	resp, err := http.Get(srv.URL + r.Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got, err := p.ParsePrice("PF_XBTUSD", resp.StatusCode, body)
	if err != nil || got != 50123.5 {
		t.Errorf("ParsePrice(PF_XBTUSD) = %v, %v; want 50123.5 (body %s)", got, err, body)
	}
	if l := kit.Log(); len(l) != 1 || l[0].APIKey != "" || l[0].Error != "" {
		t.Errorf("simulator log = %+v, want one public request", l)
	}
}

func TestTickerRequest(t *testing.T) {
	tests := []struct {
		symbol, want string
	}{
		{"PF_XBTUSD", "/derivatives/api/v3/tickers/PF_XBTUSD"},
		{"fi_ethusd_240927", "/derivatives/api/v3/tickers/fi_ethusd_240927"},
		{"", ""},
		{"PF_XBTUSD/../accounts", ""},
		{"PF_XBTUSD?x=1", ""},
		{"PF XBTUSD", ""},
		{strings.Repeat("A", 65), ""},
	}
	for _, tt := range tests {
		t.Run(tt.symbol, func(t *testing.T) {
			r := prices{}.TickerRequest(tt.symbol)
			got := ""
			if r != nil {
				got = r.Path
				if r.Method != "GET" || r.RawQuery != "" {
					t.Errorf("TickerRequest(%q) = %s %s?%s, want a GET without query", tt.symbol, r.Method, r.Path, r.RawQuery)
				}
			}
			if got != tt.want {
				t.Errorf("TickerRequest(%q).Path = %q, want %q", tt.symbol, got, tt.want)
			}
		})
	}
}

func TestParsePrice(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   float64 // 0: an error
	}{
		{"number", 200, `{"result":"success","ticker":{"symbol":"PF_XBTUSD","last":50000.5}}`, 50000.5},
		{"string", 200, `{"result":"success","ticker":{"symbol":"PF_XBTUSD","last":"50000.25"}}`, 50000.25},
		{"lower case symbol", 200, `{"result":"success","ticker":{"symbol":"pf_xbtusd","last":1.5}}`, 1.5},
		{"other symbol", 200, `{"result":"success","ticker":{"symbol":"PF_ETHUSD","last":1}}`, 0},
		{"error", 200, `{"result":"error","error":"notFound"}`, 0},
		{"status", 404, `{"result":"success","ticker":{"symbol":"PF_XBTUSD","last":1}}`, 0},
		{"no last", 200, `{"result":"success","ticker":{"symbol":"PF_XBTUSD"}}`, 0},
		{"zero", 200, `{"result":"success","ticker":{"symbol":"PF_XBTUSD","last":0}}`, 0},
		{"list", 200, `{"result":"success","tickers":[{"symbol":"PF_XBTUSD","last":1}]}`, 0},
		{"not json", 200, `nope`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := prices{}.ParsePrice("PF_XBTUSD", tt.status, []byte(tt.body))
			if tt.want == 0 {
				if err == nil {
					t.Errorf("ParsePrice(%d, %s) = %v, nil; want an error", tt.status, tt.body, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParsePrice(%d, %s) = %v, %v; want %v", tt.status, tt.body, got, err, tt.want)
			}
		})
	}
}
