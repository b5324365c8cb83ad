package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/vault"
)

// hlWallets is a Hyperliquid master account with one approved agent, both
// registered at the simulator, and both keys sealed in the vault
// (hyperliquid/agent and hyperliquid/master).
type hlWallets struct {
	master, agent *eip712.PrivateKey
}

func newHLEnv(t *testing.T, policies map[string]policy.Definition) (*Env, *hlWallets) {
	t.Helper()
	env := NewEnv(t, []string{"hyperliquid"}, policies)
	s := env.Sims["hyperliquid"]
	w := &hlWallets{}
	var err error
	if w.master, err = eip712.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if w.agent, err = eip712.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	// The environment's simulator is reached only over HTTP; a second
	// handle on the same kit registers the agent through a signed
	// approveAgent, as an operator would.
	s.Kit.AddAccount(sim.Account{Key: exchange.Credential{APIKey: w.master.Address().Hex()}})
	for _, k := range []struct {
		name string
		key  *eip712.PrivateKey
	}{{"master", w.master}, {"agent", w.agent}} {
		if _, err := env.Vault.AddKey(context.Background(), vault.KeyInput{Exchange: "hyperliquid", Name: k.name,
			APIKey: k.key.Address().Hex(), Account: w.master.Address().Hex(), Secret: exchange.Secret(k.key.Hex()), Kind: exchange.KeyHMAC}); err != nil {
			t.Fatal(err)
		}
	}
	req, err := hyperliquid.ApproveAgentRequest(w.agent.Address(), "keywarden", hyperliquid.Mainnet, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cred := &exchange.Credential{APIKey: w.master.Address().Hex(), Account: w.master.Address().Hex(), Secret: exchange.Secret(w.master.Hex())}
	if err := hyperliquid.NewSigner(hyperliquid.Mainnet).Sign(req, cred, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if st, body := hlPost(t, s.URL+"/exchange", req.Body); st != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("approveAgent at the simulator: %d %s", st, body)
	}
	s.Kit.ResetLog()
	return env, w
}

func hlPost(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hlBot signs like any Hyperliquid client, with the wallet key derived from
// its keywarden client secret, and posts to /hyperliquid/<id>/exchange.
type hlBot struct {
	t   *testing.T
	url string
	key *eip712.PrivateKey
}

func newHLBot(t *testing.T, env *Env, iss *client.Issued) *hlBot {
	k, err := hyperliquid.ClientPrivateKey(iss.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return &hlBot{t: t, url: env.URL + "/hyperliquid/" + iss.ID + "/exchange", key: k}
}

// signed returns the bot's signed body for action at nonce now.
func (b *hlBot) signed(action string, nonce int64) []byte {
	b.t.Helper()
	body, err := hyperliquid.SignBody(b.key, fmt.Appendf(nil, `{"action":%s,"nonce":%d,"vaultAddress":null}`, action, nonce), hyperliquid.Mainnet)
	if err != nil {
		b.t.Fatal(err)
	}
	return body
}

func hlOrder(px, sz string) string {
	return `{"type":"order","orders":[{"a":0,"b":true,"p":"` + px + `","s":"` + sz + `","r":false,"t":{"limit":{"tif":"Gtc"}}}],"grouping":"na"}`
}

func hlWithdraw(dest, amount string, now int64) string {
	return fmt.Sprintf(`{"type":"withdraw3","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","destination":"%s","amount":"%s","time":%d}`, dest, amount, now)
}

// TestHyperliquidThroughGateway: a bot signing with its client key places
// an order that keywarden re-signs with the vault's agent wallet; the
// simulator recovers the agent and books the order on the master account.
// An order over the notional cap, a withdrawal, a replay and a forged
// signature are refused and never reach the simulator; /info passes
// through unsigned.
func TestHyperliquidThroughGateway(t *testing.T) {
	env, w := newHLEnv(t, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, MaxOrderNotional: 1000, NotionalCurrency: "USDC"},
	})
	kit := env.Sims["hyperliquid"].Kit
	iss := env.Issue("hyperliquid", "agent", "trader")
	bot := newHLBot(t, env, iss)
	now := time.Now().UnixMilli()
	order := bot.signed(hlOrder("50000", "0.01"), now)
	forger, _ := eip712.GenerateKey()
	forged, _ := hyperliquid.SignBody(forger, fmt.Appendf(nil, `{"action":%s,"nonce":%d,"vaultAddress":null}`, hlOrder("50000", "0.01"), now+9), hyperliquid.Mainnet)
	steps := []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"order", order, 200, `"resting"`},
		{"replay", order, 401, "replayed"},
		{"over the cap", bot.signed(hlOrder("50000", "0.1"), now+1), 403, "max_order_notional"},
		{"withdraw", bot.signed(hlWithdraw("0x5e9ee1089755c3435139848e47e6635505d5a13a", "100", now+2), now+2), 403, "rule scope"},
		{"forged", forged, 401, "invalid API key or signature"},
		{"stale", bot.signed(hlOrder("50000", "0.01"), now-120_000), 401, "nonce"},
	}
	for _, s := range steps {
		st, body := hlPost(t, bot.url, s.body)
		if st != s.status || !strings.Contains(body, s.want) {
			t.Errorf("%s: %d %s, want %d containing %q", s.name, st, body, s.status, s.want)
		}
		env.AssertNoSecretIn(s.name+" answer", body, w.agent.Hex(), w.master.Hex(), string(iss.Secret))
	}
	st, body := hlPost(t, env.URL+"/hyperliquid/info", []byte(`{"type":"extraAgents","user":"`+w.master.Address().Hex()+`"}`))
	if st != 200 || !strings.Contains(body, w.agent.Address().Hex()) {
		t.Errorf("info extraAgents: %d %s, want the agent listed", st, body)
	}
	orders := kit.Orders(w.master.Address().Hex())
	if len(orders) != 1 || orders[0].Quantity != 0.01 || orders[0].Price != 50000 || orders[0].Side != "buy" {
		t.Errorf("simulator orders = %+v, want one buy of 0.01 at 50000", orders)
	}
	var got []string
	for _, l := range kit.Log() {
		got = append(got, l.Method+" "+l.Path+" "+l.APIKey)
		if l.Path == "/exchange" && bytes.Contains(l.Body, order[bytes.Index(order, []byte(`"signature"`)):]) {
			t.Errorf("the bot's own signature reached the simulator")
		}
	}
	want := []string{"POST /exchange " + w.master.Address().Hex(), "POST /info "}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("simulator requests (-want +got):\n%s", d)
	}
	dec := Decisions(env.CheckAudit(w.agent.Hex(), w.master.Hex(), string(iss.Secret)))
	wantDec := map[string]int{"intent/allow/": 1, "outcome": 1, "denied/deny/max_order_notional": 1, "denied/deny/scope": 1,
		"denied/deny/auth": 1, "denied/deny/timestamp": 2}
	if d := cmp.Diff(wantDec, dec); d != "" {
		t.Errorf("audit decisions (-want +got):\n%s", d)
	}
}

// TestHyperliquidWithdrawNeedsPolicyAndMaster: a withdrawal allowed by
// policy is re-signed with the master wallet and executed; the same call
// through a credential bound to the agent key is refused before the venue,
// since agents cannot sign fund movements.
func TestHyperliquidWithdrawNeedsPolicyAndMaster(t *testing.T) {
	env, w := newHLEnv(t, map[string]policy.Definition{
		"treasurer": {Scopes: []string{"read", "withdraw"}, Withdraw: policy.WithdrawDef{Addresses: []policy.AddressDef{
			{Asset: "USDC", Network: "arbitrum", Address: "0x5E9EE1089755C3435139848E47E6635505D5A13A", MaxAmount: 100}}}},
	})
	kit := env.Sims["hyperliquid"].Kit
	dest := "0x5e9ee1089755c3435139848e47e6635505d5a13a"
	now := time.Now().UnixMilli()

	viaMaster := newHLBot(t, env, env.Issue("hyperliquid", "master", "treasurer"))
	if st, body := hlPost(t, viaMaster.url, viaMaster.signed(hlWithdraw(dest, "25", now), now)); st != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("withdraw through the master key: %d %s, want ok", st, body)
	}
	if got := kit.Balances(w.master.Address().Hex())["USDC"]; got != 100000-25 {
		t.Errorf("USDC = %v after a 25 withdrawal, want %v", got, 100000-25)
	}
	if st, body := hlPost(t, viaMaster.url, viaMaster.signed(hlWithdraw("0x1111111111111111111111111111111111111111", "25", now+2), now+2)); st != 403 {
		t.Errorf("withdraw to an unlisted address: %d %s, want 403", st, body)
	}
	if st, body := hlPost(t, viaMaster.url, viaMaster.signed(hlWithdraw(dest, "250", now+3), now+3)); st != 403 {
		t.Errorf("withdraw over the address cap: %d %s, want 403", st, body)
	}
	viaAgent := newHLBot(t, env, env.Issue("hyperliquid", "agent", "treasurer"))
	if st, body := hlPost(t, viaAgent.url, viaAgent.signed(hlWithdraw(dest, "25", now+1), now+1)); st != 503 {
		t.Errorf("withdraw through the agent key: %d %s, want 503 (cannot sign)", st, body)
	}
	if n := len(kit.Log()); n != 1 {
		t.Errorf("simulator received %d requests, want only the master's withdrawal", n)
	}
	var sent struct {
		Action struct {
			Time int64 `json:"time"`
		} `json:"action"`
		Nonce int64 `json:"nonce"`
	}
	if err := json.Unmarshal(kit.Log()[0].Body, &sent); err != nil || sent.Nonce != sent.Action.Time || sent.Nonce < now {
		t.Errorf("forwarded withdrawal nonce %d, action time %d (err %v): want keywarden's fresh nonce in both", sent.Nonce, sent.Action.Time, err)
	}
	env.CheckAudit(w.agent.Hex(), w.master.Hex())
}
