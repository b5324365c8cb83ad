package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/policy"
)

// proBot drives ccxt.pro (shipped in the ccxt npm package) against the
// gateway: the unmodified binance pro client with its WebSocket URLs
// pointed at keywarden. It reads a job on stdin and prints a report.
const proBot = `'use strict';
const ccxt = require('ccxt');
async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const job = JSON.parse(input);
  const ex = new ccxt.pro.binance({ apiKey: job.apiKey, secret: job.secret, enableRateLimit: false, timeout: 10000, verbose: !!process.env.PROBOT_VERBOSE });
  ex.urls.api.ws.spot = job.base + '/binance/ws';
  ex.urls.api.ws['ws-api'].spot = job.base + '/binance/ws-api/v3';
  ex.setMarkets(job.markets, job.currencies);
  await ex.loadHttpProxyAgent(); // ccxt needs it for plain ws:// (loopback) URLs
  const report = {};
  const trades = [];
  while (trades.length < job.trades) {
    const batch = await ex.watchTrades('BTC/USDT');
    for (const t of batch) trades.push({ symbol: t.symbol, price: t.price });
  }
  report.trades = trades.slice(0, job.trades);
  report.orders = [];
  for (const o of job.orders) {
    try {
      const r = await ex.createOrderWs('BTC/USDT', 'limit', 'buy', o.amount, o.price);
      report.orders.push({ ok: true, id: r.id, status: r.status });
    } catch (e) {
      report.orders.push({ ok: false, name: e.constructor.name, message: String(e.message).slice(0, 300) });
    }
  }
  await ex.close();
  process.stdout.write(JSON.stringify(report));
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
`

type proReport struct {
	Trades []struct {
		Symbol string  `json:"symbol"`
		Price  float64 `json:"price"`
	} `json:"trades"`
	Orders []struct {
		OK      bool   `json:"ok"`
		ID      string `json:"id"`
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"orders"`
}

// TestCCXTProThroughGateway: ccxt.pro's watchTrades reads a market stream
// through the WebSocket proxy, and createOrderWs places an order over the
// Binance WebSocket API with the bot's client key and secret: keywarden
// verifies, checks and re-signs it, and refuses the order over the cap.
func TestCCXTProThroughGateway(t *testing.T) {
	dir := exchangetest.CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ccxt")); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("ccxt is not installed in %s", dir)
		}
		t.Skipf("ccxt is not installed in %s; the project's test command installs it", dir)
	}
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["binance"].Kit
	kit.SetPrice("BTCUSDT", 50000)
	key := env.AddKey("binance", "main", "read", "trade")
	iss := env.Issue("binance", "main", "trader")
	script := filepath.Join(t.TempDir(), "probot.js")
	if err := os.WriteFile(script, []byte(proBot), 0o600); err != nil {
		t.Fatal(err)
	}
	market := binanceMarket()
	market["lowercaseId"] = "btcusdt" // ccxt.pro names streams after it
	job, _ := json.Marshal(map[string]any{
		"apiKey": iss.ID, "secret": string(iss.Secret), "base": "ws" + strings.TrimPrefix(env.URL, "http"), "trades": 5,
		"markets": []map[string]any{market}, "currencies": currencies("BTC", "USDT"),
		"orders": []map[string]any{{"amount": 0.01, "price": 49000}, {"amount": 1, "price": 49000}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	cmd.Stdin = bytes.NewReader(job)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ccxt.pro bot: %v: %s\n%.3000s", err, stderr.String(), out)
	}
	var rep proReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ccxt.pro bot output %s: %v", out, err)
	}
	if len(rep.Trades) != 5 {
		t.Fatalf("watchTrades gave %d trades, want 5", len(rep.Trades))
	}
	for _, tr := range rep.Trades {
		if tr.Symbol != "BTC/USDT" || tr.Price != 50000 {
			t.Errorf("trade %+v, want BTC/USDT at 50000", tr)
		}
	}
	if len(rep.Orders) != 2 {
		t.Fatalf("orders report %+v", rep.Orders)
	}
	orders := kit.Orders(key.APIKey)
	if o := rep.Orders[0]; !o.OK || len(orders) != 1 || o.ID != orders[0].ID {
		t.Errorf("createOrderWs = %+v, simulator orders %+v: want the one order", o, orders)
	}
	if o := rep.Orders[1]; o.OK || !strings.Contains(o.Message, "max_order_notional") {
		t.Errorf("createOrderWs over the cap = %+v, want a refusal naming max_order_notional", o)
	}
	env.AssertNoSecretIn("ccxt.pro report", string(out), key.Secret, key.APIKey)
	env.CheckAudit(key.Secret, string(iss.Secret))
}
