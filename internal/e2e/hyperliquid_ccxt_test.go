package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/policy"
)

// hlSwapMarket is ccxt's BTC/USDC:USDC perpetual on Hyperliquid (asset
// index 0), as its loadMarkets would build it from the info "meta" answer.
func hlSwapMarket() map[string]any {
	return map[string]any{
		"id": "0", "symbol": "BTC/USDC:USDC", "base": "BTC", "quote": "USDC", "settle": "USDC",
		"baseId": "0", "quoteId": "USDC", "settleId": "USDC", "baseName": "BTC",
		"type": "swap", "spot": false, "margin": true, "swap": true, "future": false, "option": false,
		"contract": true, "active": true, "linear": true, "inverse": false, "contractSize": 1,
		"precision": map[string]any{"amount": 0.00001, "price": 1},
		"limits":    map[string]any{"amount": map[string]any{"min": 0.00001}, "price": map[string]any{}, "cost": map[string]any{"min": 10}},
		"info":      map[string]any{"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
	}
}

// hlCCXTJob is an unmodified ccxt hyperliquid bot: its private key is the
// wallet key derived from its keywarden client secret, its wallet address
// the master account's, and its one base URL keywarden's
// /hyperliquid/c/<client id>.
func hlCCXTJob(t *testing.T, env *Env, iss *client.Issued, master string, steps ...exchangetest.BotStep) exchangetest.BotJob {
	t.Helper()
	k, err := hyperliquid.ClientPrivateKey(iss.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return exchangetest.BotJob{
		Exchange:    "hyperliquid",
		Credentials: map[string]string{"walletAddress": master, "privateKey": k.Hex()},
		HostMap:     map[string]string{"https://api.{hostname}": env.URL + "/hyperliquid/c/" + iss.ID},
		Markets:     []map[string]any{hlSwapMarket()},
		Currencies:  currencies("BTC", "USDC"),
		Steps:       steps,
	}
}

// TestCCXTHyperliquidThroughGateway: an unmodified ccxt hyperliquid bot
// reads its balance, places and cancels a limit order and is denied a
// withdrawal, all through one base URL. The simulator sees only
// keywarden's agent signatures (it recovers the agent, never the bot's
// wallet); the withdrawal and ccxt's own builder-fee approval and referrer
// calls (account-admin) are refused and never forwarded.
func TestCCXTHyperliquidThroughGateway(t *testing.T) {
	env, w := newHLEnv(t, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, MaxOrderNotional: 1000, NotionalCurrency: "USDC"},
	})
	kit := env.Sims["hyperliquid"].Kit
	master := w.master.Address().Hex()
	iss := env.Issue("hyperliquid", "agent", "trader")
	res := exchangetest.CCXTBot(t, hlCCXTJob(t, env, iss, master,
		exchangetest.BotStep{Op: "fetchBalance"},
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USDC:USDC", "limit", "buy", 0.01, 50000}, Save: "id", SaveField: "id"},
		exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USDC:USDC"}},
		exchangetest.BotStep{Op: "withdraw", Args: []any{"USDC", 100, "0x5e9ee1089755c3435139848e47e6635505d5a13a"}},
	))
	expectBotSteps(t, res, true, true, true, false)
	var bal struct {
		Total map[string]float64 `json:"total"`
	}
	if err := json.Unmarshal(res[0].Result, &bal); err != nil || bal.Total["USDC"] != 100000 {
		t.Errorf("fetchBalance total = %v (err %v), want USDC 100000: %s", bal.Total, err, res[0].Result)
	}
	orders := kit.Orders(master)
	if len(orders) != 1 {
		t.Fatalf("simulator holds %d orders, want 1", len(orders))
	}
	if id := botResultField(t, res[1], "id"); id != orders[0].ID {
		t.Errorf("createOrder id = %q, want the simulator's %q", id, orders[0].ID)
	}
	if o := orders[0]; o.Status != "CANCELED" || o.Symbol != "0" || o.Quantity != 0.01 || o.Price != 50000 || o.Side != "buy" {
		t.Errorf("simulator order = %+v, want a canceled buy of 0.01 of asset 0 at 50000", o)
	}
	if e := res[3].Error; e == nil || !strings.Contains(e.Message, "rule scope") {
		t.Errorf("withdraw error = %+v, want a policy denial naming the scope rule", e)
	}
	for _, r := range res {
		out := string(r.Result)
		if r.Error != nil {
			out += r.Error.Message
		}
		env.AssertNoSecretIn("bot output of "+r.Op, out, w.agent.Hex(), w.master.Hex(), string(iss.Secret), Marker)
	}
	// Every signed request the simulator accepted was signed by the agent
	// (it books them on the master); info calls arrive unsigned at /info.
	var got []string
	for _, l := range kit.Log() {
		if strings.Contains(string(l.Body), string(iss.Secret)) || strings.Contains(l.Path, iss.ID) {
			t.Errorf("simulator saw the client credential in %s %s", l.Method, l.Path)
		}
		switch l.Path {
		case "/info":
			var q struct{ Type string }
			_ = json.Unmarshal(l.Body, &q)
			got = append(got, "info "+q.Type)
		case "/exchange":
			var b struct {
				Action struct{ Type string }
			}
			_ = json.Unmarshal(l.Body, &b)
			got = append(got, "exchange "+b.Action.Type)
			if l.APIKey != master || !l.Verified || l.Error != "" {
				t.Errorf("simulator saw %s with signer %q verified=%v error=%q, want the agent acting for the master", b.Action.Type, l.APIKey, l.Verified, l.Error)
			}
			if signer, err := hyperliquid.RecoverSigner(l.Body, hyperliquid.Mainnet); err != nil || signer != w.agent.Address() {
				t.Errorf("%s forwarded signed by %s (%v), want keywarden's agent %s", b.Action.Type, signer.Hex(), err, w.agent.Address().Hex())
			}
		default:
			t.Errorf("simulator saw %s %s", l.Method, l.Path)
		}
	}
	want := []string{"info userAbstraction", "info clearinghouseState", "exchange order", "exchange cancel"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("simulator requests (-want +got):\n%s", d)
	}
	// ccxt tries approveBuilderFee before each order call and setReferrer
	// once; both are account-admin, denied, and ccxt carries on.
	got = nil
	for _, r := range env.CheckAudit(w.agent.Hex(), w.master.Hex(), string(iss.Secret)) {
		if r.Intent != nil {
			got = append(got, r.Intent.Decision+" "+r.Intent.Call.Endpoint+" "+r.Intent.Rule)
		}
	}
	slices.Sort(got)
	wantAudit := []string{"allow cancel ", "allow order ", "deny approveBuilderFee scope", "deny approveBuilderFee scope",
		"deny setReferrer scope", "deny withdraw3 scope"}
	if d := cmp.Diff(wantAudit, got); d != "" {
		t.Errorf("audit intents (-want +got):\n%s", d)
	}
}
