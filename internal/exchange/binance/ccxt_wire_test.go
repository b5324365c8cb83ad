package binance

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// ccxtWireScript drives ccxt's implicit API against the simulator over
// loopback HTTP and prints each call's outcome. Only the URLs change.
const ccxtWireScript = `'use strict';
const ccxt = require('ccxt');
async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const out = [];
  const mk = (Cls) => {
    const ex = new Cls({ apiKey: cfg.apiKey, secret: cfg.secret, enableRateLimit: false });
    for (const k of Object.keys(ex.urls.api)) {
      const u = ex.urls.api[k];
      if (typeof u === 'string') ex.urls.api[k] = u.replace(/^https:\/\/[^/]+/, cfg.base);
    }
    return ex;
  };
  const spot = mk(ccxt.binance), usdm = mk(ccxt.binanceusdm);
  const calls = [
    ['time', () => spot.publicGetTime()],
    ['ticker', () => spot.publicGetTickerPrice({ symbol: 'BTCUSDT' })],
    ['account', () => spot.privateGetAccount()],
    ['order', () => spot.privatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', timeInForce: 'GTC', quantity: '0.01', price: '100' })],
    ['openOrders', () => spot.privateGetOpenOrders({ symbol: 'BTCUSDT' })],
    ['apiRestrictions', () => spot.sapiGetAccountApiRestrictions()],
    ['withdraw', () => spot.sapiPostCapitalWithdrawApply({ coin: 'USDT', network: 'TRX', address: 'TXYZabc', amount: '10' })],
    ['futuresTime', () => usdm.fapiPublicGetTime()],
    ['futuresOrder', () => usdm.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'SELL', type: 'LIMIT', timeInForce: 'GTC', quantity: '1', price: '200' })],
    ['futuresBalance', () => usdm.fapiPrivateV2GetBalance()],
  ];
  for (const [name, fn] of calls) {
    try { out.push({ name, ok: true, result: await fn() }); }
    catch (e) { out.push({ name, ok: false, error: String(e && e.message || e) }); }
  }
  process.stdout.write(JSON.stringify(out));
}
main().catch((e) => { console.error(e); process.exit(1); });
`

// TestCCXTAgainstSimulator has ccxt 4.5.84 call the simulator over
// loopback HTTP with its own clock, nonce and encodings: the simulator must
// accept ccxt exactly as Binance accepts it, and enforce permissions.
func TestCCXTAgainstSimulator(t *testing.T) {
	dir := exchangetest.CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ccxt")); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("ccxt is not installed in %s", dir)
		}
		t.Skip("ccxt is not installed")
	}
	kit := sim.NewKit()
	kit.AddAccount(sim.Account{Key: *hmacCred("wirekey", "wiresecret"), Permissions: map[string]bool{"read": true, "trade": true}})
	srv := httptest.NewServer(NewSimulator(kit))
	defer srv.Close()

	script := filepath.Join(t.TempDir(), "wire.js")
	if err := os.WriteFile(script, []byte(ccxtWireScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"base": srv.URL, "apiKey": "wirekey", "secret": "wiresecret"})
	cmd := exec.Command("node", script, string(cfg))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	var results []struct {
		Name   string          `json:"name"`
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	for _, r := range results {
		wantOK := r.Name != "withdraw" // the key has no withdraw permission
		if r.OK != wantOK {
			t.Errorf("ccxt %s: ok = %v (%s %s), want %v", r.Name, r.OK, r.Result, r.Error, wantOK)
		}
		if r.Name == "withdraw" && !bytes.Contains([]byte(r.Error), []byte("-2015")) {
			t.Errorf("ccxt withdraw error = %q, want Binance code -2015", r.Error)
		}
	}
	orders := kit.Orders("wirekey")
	if len(orders) != 2 {
		t.Errorf("kit.Orders() = %d orders, want 2 (spot and futures)", len(orders))
	}
	verified := 0
	for _, l := range kit.Log() {
		if l.Verified {
			verified++
		}
	}
	if want := 6; verified != want {
		t.Errorf("verified requests = %d, want %d", verified, want)
	}
}
