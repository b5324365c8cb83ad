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

// proUserBot runs ccxt.pro's watchBalance for Binance USDⓈ-M futures
// through the gateway: ccxt makes a listen key over REST
// (POST /fapi/v1/listenKey) and opens the user-data stream with it.
const proUserBot = `'use strict';
const ccxt = require('ccxt');
async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const job = JSON.parse(input);
  const ex = new ccxt.pro.binance({ apiKey: job.apiKey, secret: job.secret, enableRateLimit: false, timeout: 10000,
    verbose: !!process.env.PROBOT_VERBOSE, options: { defaultType: 'future' } });
  ex.urls.api.ws.future = job.ws + '/binance-usdm/ws';
  ex.urls.api.fapiPrivate = job.rest + '/binance-usdm/fapi/v1';
  ex.setMarkets(job.markets, job.currencies);
  await ex.loadHttpProxyAgent();
  const report = { balances: [] };
  for (let i = 0; i < 2; i++) {
    const b = await ex.watchBalance();
    report.balances.push(b.USDT ? b.USDT.free : null);
  }
  report.listenKey = ex.options.future && ex.options.future.listenKey;
  // close() rejects the pending keep-alive timer's futures; the report is
  // complete, so the process ends here.
  process.stdout.write(JSON.stringify(report), () => process.exit(0));
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
`

// TestCCXTProUserDataStream: ccxt.pro's watchBalance on Binance futures
// creates its listen key through the gateway and reads balance events from
// the user-data stream through the WebSocket proxy, which opens it because
// keywarden recorded the key for the bot's credential.
func TestCCXTProUserDataStream(t *testing.T) {
	dir := exchangetest.CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ccxt")); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("ccxt is not installed in %s", dir)
		}
		t.Skipf("ccxt is not installed in %s; the project's test command installs it", dir)
	}
	env := NewEnv(t, []string{"binance", "binance-usdm"}, map[string]policy.Definition{
		"reader": {Scopes: []string{"read"}},
	})
	key := env.AddKey("binance", "main", "read")
	iss := env.Issue("binance-usdm", "main", "reader")
	script := filepath.Join(t.TempDir(), "prouser.js")
	if err := os.WriteFile(script, []byte(proUserBot), 0o600); err != nil {
		t.Fatal(err)
	}
	job, _ := json.Marshal(map[string]any{
		"apiKey": iss.ID, "secret": string(iss.Secret), "rest": env.URL, "ws": "ws" + strings.TrimPrefix(env.URL, "http"),
		"markets": []map[string]any{binanceMarket()}, "currencies": currencies("BTC", "USDT"),
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
	var rep struct {
		Balances  []*float64 `json:"balances"`
		ListenKey string     `json:"listenKey"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ccxt.pro bot output %s: %v", out, err)
	}
	if len(rep.Balances) != 2 || rep.Balances[0] == nil || *rep.Balances[0] != 100000 {
		t.Errorf("watchBalance gave %s, want two USDT balances of 100000", out)
	}
	if _, ok := env.Server.Gateway.ListenKey("binance-usdm", rep.ListenKey); !ok {
		t.Error("the listen key ccxt used is not recorded for its credential")
	}
	env.CheckAudit(key.Secret, string(iss.Secret), rep.ListenKey)
}
