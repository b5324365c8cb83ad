package binance

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestPriceFromSimulatorTicker(t *testing.T) {
	kit := sim.NewKit()
	kit.SetPrice("BTCUSDT", 50123.5)
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()
	for _, v := range []struct {
		name string
		p    prices
	}{{"spot", prices{"/api/v3/ticker/price"}}, {"usdm", prices{"/fapi/v1/ticker/price"}}} {
		r := v.p.TickerRequest("BTCUSDT")
		resp, err := http.Get(srv.URL + r.Path + "?" + r.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got, err := v.p.ParsePrice("BTCUSDT", resp.StatusCode, body)
		if err != nil || got != 50123.5 {
			t.Errorf("%s: ParsePrice = %v, %v; want 50123.5 (body %s)", v.name, got, err, body)
		}
	}
	bad := []struct {
		status int
		body   string
	}{{500, `{}`}, {200, `{"symbol":"ETHUSDT","price":"1"}`}, {200, `{"symbol":"BTCUSDT","price":"NaN"}`}, {200, `nope`}}
	for _, b := range bad {
		if _, err := (prices{}).ParsePrice("BTCUSDT", b.status, []byte(b.body)); err == nil {
			t.Errorf("ParsePrice(%d, %s) = nil error, want one", b.status, b.body)
		}
	}
}
