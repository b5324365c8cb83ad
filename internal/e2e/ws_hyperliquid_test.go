package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/policy"
)

// hlPostMsg is a WebSocket post of kind "action" or "info" carrying payload.
func hlPostMsg(id int, kind string, payload []byte) []byte {
	return fmt.Appendf(nil, `{"method":"post","id":%d,"request":{"type":"%s","payload":%s}}`, id, kind, payload)
}

// hlWSPost sends a raw message and reads the post answer with id,
// skipping stream events.
func hlWSPost(t *testing.T, c *websocket.Conn, msg []byte, id int) (typ string, payload json.RawMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var ans struct {
			Channel string `json:"channel"`
			Data    struct {
				ID       int `json:"id"`
				Response struct {
					Type    string          `json:"type"`
					Payload json.RawMessage `json:"payload"`
				} `json:"response"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			t.Fatalf("answer %s: %v", b, err)
		}
		if ans.Channel == "post" && ans.Data.ID == id {
			return ans.Data.Response.Type, ans.Data.Response.Payload
		}
	}
	t.Fatalf("no answer to post %d", id)
	return "", nil
}

// TestWSHyperliquidPost: a bot on /hyperliquid/c/<client id>/ws posts an
// order signed with its client key; keywarden verifies, describes, checks,
// audits and re-signs it with the agent, and the simulator books it. A
// withdrawal, an order over the cap, a replay on the same socket and a
// replay of a signature REST already accepted are refused and never
// forwarded; subscriptions, ping and info posts pass unchanged, and an
// action on a socket without a client id is refused.
func TestWSHyperliquidPost(t *testing.T) {
	env, w := newHLEnv(t, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, MaxOrderNotional: 1000, NotionalCurrency: "USDC"},
	})
	kit := env.Sims["hyperliquid"].Kit
	kit.SetPrice("BTC", 50000)
	master := w.master.Address().Hex()
	iss := env.Issue("hyperliquid", "agent", "trader")
	bot := newHLBot(t, env, iss)
	now := time.Now().UnixMilli()

	// Streams, ping and info posts on the plain socket.
	pub := wsDial(t, env, "/hyperliquid/ws")
	if m := wsSend(t, pub, map[string]any{"method": "subscribe", "subscription": map[string]string{"type": "trades", "coin": "BTC"}}); m["channel"] != "subscriptionResponse" {
		t.Fatalf("subscribe: %v", m)
	}
	if m := wsRead(t, pub); m["channel"] != "trades" {
		t.Errorf("trade push %v, want a trades event", m)
	}
	if m := wsSend(t, pub, map[string]any{"method": "unsubscribe", "subscription": map[string]string{"type": "trades", "coin": "BTC"}}); m["channel"] != "subscriptionResponse" && m["channel"] != "trades" {
		t.Errorf("unsubscribe: %v", m)
	}
	typ, pl := hlWSPost(t, pub, hlPostMsg(7, "info", []byte(`{"type":"extraAgents","user":"`+master+`"}`)), 7)
	if typ != "info" || !bytes.Contains(pl, []byte(strings.ToLower(w.agent.Address().Hex()))) {
		t.Errorf("info post: %s %s, want the agent listed", typ, pl)
	}
	typ, pl = hlWSPost(t, pub, hlPostMsg(8, "action", bot.signed(hlOrder("50000", "0.01"), now+50)), 8)
	if typ != "action" || !bytes.Contains(pl, []byte(`"status":"err"`)) || !bytes.Contains(pl, []byte("/hyperliquid/c/")) {
		t.Errorf("action without a client id: %s %s, want an error naming the client path", typ, pl)
	}

	// The same signed order twice over REST then WS: the second is a replay.
	restOrder := bot.signed(hlOrder("50000", "0.01"), now+40)
	if st, body := hlPost(t, bot.url, restOrder); st != 200 || !strings.Contains(body, "resting") {
		t.Fatalf("REST order: %d %s", st, body)
	}

	c := wsDial(t, env, "/hyperliquid/c/"+iss.ID+"/ws")
	order := bot.signed(hlOrder("50000", "0.01"), now)
	steps := []struct {
		name    string
		payload []byte
		typ     string
		want    string
	}{
		{"order", order, "action", `"resting"`},
		{"replay", order, "action", "replayed"},
		{"replay of a REST call", restOrder, "action", "replayed"},
		{"over the cap", bot.signed(hlOrder("50000", "0.1"), now+1), "action", "max_order_notional"},
		{"withdraw", bot.signed(hlWithdraw("0x5e9ee1089755c3435139848e47e6635505d5a13a", "100", now+2), now+2), "action", "rule scope"},
		{"stale", bot.signed(hlOrder("50000", "0.01"), now-120_000), "action", "nonce"},
	}
	for i, s := range steps {
		typ, pl := hlWSPost(t, c, hlPostMsg(i+1, "action", s.payload), i+1)
		if ok := bytes.Contains(pl, []byte(`"status":"ok"`)); typ != s.typ || !bytes.Contains(pl, []byte(s.want)) || ok != (i == 0) {
			t.Errorf("%s: %s %s, want %s containing %q", s.name, typ, pl, s.typ, s.want)
		}
		env.AssertNoSecretIn(s.name+" answer", string(pl), w.agent.Hex(), w.master.Hex(), string(iss.Secret))
	}
	if m := wsSend(t, c, map[string]any{"method": "ping"}); m["channel"] != "pong" {
		t.Errorf("ping: %v", m)
	}

	orders := kit.Orders(master)
	if len(orders) != 2 {
		t.Errorf("simulator holds %d orders, want the REST one and the WS one", len(orders))
	}
	var got []string
	botSig := order[bytes.Index(order, []byte(`"signature"`)):]
	for _, l := range kit.Log() {
		if l.Path != "/exchange" {
			continue
		}
		got = append(got, l.Method+" "+l.APIKey)
		if !l.Verified || l.Error != "" {
			t.Errorf("simulator refused %s %s: %s", l.Method, l.Path, l.Error)
		}
		if bytes.Contains(l.Body, botSig) || bytes.Contains(l.Body, []byte(iss.ID)) {
			t.Errorf("the bot's signature or client id reached the simulator")
		}
		if signer, err := hyperliquid.RecoverSigner(l.Body, hyperliquid.Mainnet); err != nil || signer != w.agent.Address() {
			t.Errorf("%s request signed by %s (%v), want keywarden's agent %s", l.Method, signer.Hex(), err, w.agent.Address().Hex())
		}
	}
	if d := cmp.Diff([]string{"POST " + master, "WS " + master}, got); d != "" {
		t.Errorf("signed requests at the simulator (-want +got):\n%s", d)
	}
	// The bot's signature (r and s) is redacted from the audited post.
	var sent struct {
		Signature struct{ R, S string }
	}
	if err := json.Unmarshal(order, &sent); err != nil || sent.Signature.R == "" || sent.Signature.S == "" {
		t.Fatalf("bot order %s: %v", order, err)
	}
	dec := Decisions(env.CheckAudit(w.agent.Hex(), w.master.Hex(), string(iss.Secret), sent.Signature.R, sent.Signature.S))
	want := map[string]int{"intent/allow/": 2, "outcome": 2, "denied/deny/max_order_notional": 1, "denied/deny/scope": 1, "denied/deny/timestamp": 3}
	if d := cmp.Diff(want, dec); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
}

// hlProBot drives ccxt.pro's hyperliquid client (in the ccxt npm package)
// with its WebSocket URL pointed at keywarden's client path: watchTrades,
// then createOrderWs for each job order. It reads a job on stdin and
// prints a report.
const hlProBot = `'use strict';
const ccxt = require('ccxt');
async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const job = JSON.parse(input);
  const ex = new ccxt.pro.hyperliquid({ walletAddress: job.wallet, privateKey: job.privateKey, enableRateLimit: false, timeout: 10000 });
  ex.urls.api.ws.public = job.ws;
  ex.setMarkets(job.markets, job.currencies);
  await ex.loadHttpProxyAgent(); // ccxt needs it for plain ws:// (loopback) URLs
  const report = { trades: [], orders: [] };
  while (report.trades.length < job.trades) {
    const batch = await ex.watchTrades('BTC/USDC:USDC');
    for (const t of batch) report.trades.push({ symbol: t.symbol, price: t.price });
  }
  report.trades = report.trades.slice(0, job.trades);
  for (const o of job.orders) {
    try {
      const r = await ex.createOrderWs('BTC/USDC:USDC', 'limit', 'buy', o.amount, o.price);
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

// TestCCXTProHyperliquidThroughGateway: ccxt.pro's hyperliquid client,
// its WebSocket URL set to /hyperliquid/c/<client id>/ws, reads trades
// through the proxy and places an order with createOrderWs (a post action
// keywarden verifies, checks and re-signs with the agent); an order over
// the cap is refused and reaches ccxt as an error.
func TestCCXTProHyperliquidThroughGateway(t *testing.T) {
	dir := exchangetest.CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ccxt")); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("ccxt is not installed in %s", dir)
		}
		t.Skipf("ccxt is not installed in %s; the project's test command installs it", dir)
	}
	env, w := newHLEnv(t, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, MaxOrderNotional: 1000, NotionalCurrency: "USDC"},
	})
	kit := env.Sims["hyperliquid"].Kit
	kit.SetPrice("BTC", 50000)
	master := w.master.Address().Hex()
	iss := env.Issue("hyperliquid", "agent", "trader")
	k, err := hyperliquid.ClientPrivateKey(iss.Secret)
	if err != nil {
		t.Fatal(err)
	}
	job, _ := json.Marshal(map[string]any{
		"wallet": master, "privateKey": k.Hex(), "ws": "ws" + strings.TrimPrefix(env.URL, "http") + "/hyperliquid/c/" + iss.ID + "/ws",
		"markets": []map[string]any{hlSwapMarket()}, "currencies": currencies("BTC", "USDC"), "trades": 3,
		"orders": []map[string]any{{"amount": 0.01, "price": 50000}, {"amount": 0.1, "price": 50000}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e", hlProBot)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(job)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ccxt.pro bot: %v: %s", err, stderr.String())
	}
	var rep struct {
		Trades []struct {
			Symbol string  `json:"symbol"`
			Price  float64 `json:"price"`
		} `json:"trades"`
		Orders []struct {
			OK      bool   `json:"ok"`
			ID      string `json:"id"`
			Message string `json:"message"`
		} `json:"orders"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report %s: %v", out, err)
	}
	if len(rep.Trades) != 3 || rep.Trades[0].Symbol != "BTC/USDC:USDC" || rep.Trades[0].Price != 50000 {
		t.Errorf("trades = %+v, want 3 BTC/USDC:USDC trades at 50000", rep.Trades)
	}
	orders := kit.Orders(master)
	if len(rep.Orders) != 2 || !rep.Orders[0].OK || len(orders) != 1 || rep.Orders[0].ID != orders[0].ID {
		t.Errorf("createOrderWs = %+v, simulator orders %+v: want the first placed", rep.Orders, orders)
	}
	if len(rep.Orders) == 2 && (rep.Orders[1].OK || !strings.Contains(rep.Orders[1].Message, "max_order_notional")) {
		t.Errorf("over-cap createOrderWs = %+v, want an error naming max_order_notional", rep.Orders[1])
	}
	for _, l := range kit.Log() {
		if l.Path == "/exchange" && (l.APIKey != master || !l.Verified || l.Method != "WS") {
			t.Errorf("simulator saw %s %s signer %q verified=%v, want the agent over WS", l.Method, l.Path, l.APIKey, l.Verified)
		}
	}
	env.AssertNoSecretIn("ccxt.pro report", string(out), w.agent.Hex(), w.master.Hex(), string(iss.Secret), Marker)
	dec := Decisions(env.CheckAudit(w.agent.Hex(), w.master.Hex(), string(iss.Secret)))
	if want := map[string]int{"intent/allow/": 1, "outcome": 1, "denied/deny/max_order_notional": 1}; !cmp.Equal(want, dec) {
		t.Errorf("audit decisions = %v, want %v", dec, want)
	}
}
