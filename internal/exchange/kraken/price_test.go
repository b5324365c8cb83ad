package kraken

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPriceFromSimulatorTicker(t *testing.T) {
	env := newSimEnv(t)
	env.kit.SetPrice("XXBTZUSD", 50123.5)
	u, _ := url.Parse(env.srv.URL)
	p := New(u).Prices
	if p == nil {
		t.Fatal("New().Prices = nil, want the ticker reader")
	}
	status, body := env.send(t, p.TickerRequest("XXBTZUSD"))
	got, err := p.ParsePrice("XXBTZUSD", status, []byte(body))
	if err != nil || got != 50123.5 {
		t.Errorf("ParsePrice(XXBTZUSD) = %v, %v; want 50123.5 (body %s)", got, err, body)
	}
	if l := env.kit.Log(); len(l) != 1 || l[0].APIKey != "" || l[0].Error != "" {
		t.Errorf("simulator log = %+v, want one public request", l)
	}
}

func TestTickerRequest(t *testing.T) {
	tests := []struct {
		pair, want string
	}{
		{"XBTUSD", "pair=XBTUSD"},
		{"XXBTZUSD", "pair=XXBTZUSD"},
		{"", ""},
		{"XBTUSD,ETHUSD", ""},
		{"XBT/USD", ""},
		{"XBTUSD&x=1", ""},
		{strings.Repeat("X", 33), ""},
	}
	for _, tt := range tests {
		t.Run(tt.pair, func(t *testing.T) {
			r := prices{}.TickerRequest(tt.pair)
			got := ""
			if r != nil {
				got = r.RawQuery
				if r.Method != "GET" || r.Path != "/0/public/Ticker" {
					t.Errorf("TickerRequest(%q) = %s %s, want GET /0/public/Ticker", tt.pair, r.Method, r.Path)
				}
			}
			if got != tt.want {
				t.Errorf("TickerRequest(%q).RawQuery = %q, want %q", tt.pair, got, tt.want)
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
		{"exact", 200, `{"error":[],"result":{"XBTUSD":{"c":["50000.1","0.1"]}}}`, 50000.1},
		// Kraken answers with the canonical name when asked for the altname.
		{"canonical", 200, `{"error":[],"result":{"XXBTZUSD":{"c":["50000.2","0.1"]}}}`, 50000.2},
		{"two pairs", 200, `{"error":[],"result":{"XXBTZUSD":{"c":["1","0.1"]},"XETHZUSD":{"c":["2","0.1"]}}}`, 0},
		{"error", 200, `{"error":["EQuery:Unknown asset pair"],"result":{}}`, 0},
		{"status", 502, `{"error":[],"result":{"XBTUSD":{"c":["1","0.1"]}}}`, 0},
		{"no c", 200, `{"error":[],"result":{"XBTUSD":{"a":["1","1","1"]}}}`, 0},
		{"zero", 200, `{"error":[],"result":{"XBTUSD":{"c":["0","0.1"]}}}`, 0},
		{"nan", 200, `{"error":[],"result":{"XBTUSD":{"c":["NaN","0.1"]}}}`, 0},
		{"not json", 200, `nope`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := prices{}.ParsePrice("XBTUSD", tt.status, []byte(tt.body))
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

func TestSimulatorBalanceEx(t *testing.T) {
	env := newSimEnv(t, "read", "trade")
	signer := NewSigner()
	send := func(path, body string) string {
		r := formRequest(path, body)
		if err := signer.Sign(r, env.key, time.Now()); err != nil {
			t.Fatal(err)
		}
		_, b := env.send(t, r)
		return b
	}
	send("/0/private/AddOrder", "ordertype=limit&pair=XXBTZUSD&price=40000&type=buy&volume=0.5")
	send("/0/private/AddOrder", "ordertype=limit&pair=XBTUSD&price=60000&type=sell&volume=2")
	var resp struct {
		Error  []string                     `json:"error"`
		Result map[string]map[string]string `json:"result"`
	}
	body := send("/0/private/BalanceEx", "")
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("BalanceEx answered %s: %v", body, err)
	}
	want := map[string]string{"balance": "10.0000000000", "hold_trade": "2.0000000000"}
	if diff := cmp.Diff(want, resp.Result["XXBT"]); diff != "" {
		t.Errorf("BalanceEx XXBT (-want +got):\n%s", diff)
	}
	want = map[string]string{"balance": "100000.0000000000", "hold_trade": "20000.0000000000"}
	if diff := cmp.Diff(want, resp.Result["ZUSD"]); diff != "" {
		t.Errorf("BalanceEx ZUSD (-want +got):\n%s", diff)
	}
}
