package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
)

// The policy engine's end-to-end proof: every rule of docs/policy.md, judged
// inside a real keywarden (vault on SQLite, audit log, client registry,
// gateway) for an unmodified ccxt binance bot, with the Binance simulator as
// the oracle of what reached the venue.

// polStep is one ccxt call of a policy case and the decision keywarden must
// take on it.
type polStep struct {
	op   string
	args []any
	// tag is the newClientOrderId or withdrawOrderId the call carries, so
	// that the simulator's log shows whether this very call arrived.
	tag string
	// save keeps the call's result id for later steps ("$name").
	save string
	// deny is the rule that must refuse the call; "" means allowed.
	deny string
	// msg, when set, is what the refusal must say instead of naming deny
	// (refusals before the policy check do not name a rule).
	msg string
}

// polBot is one client credential driven by one ccxt process.
type polBot struct {
	name   string // the case name, also its exchange key's name
	policy string
	// ttl is the credential's lifetime; default one hour.
	ttl time.Duration
	// siblings are orders placed first, through the gateway, by another
	// credential on the same key and policy (a Go bot), to prove which
	// windows are shared.
	siblings []string
	steps    []polStep
}

// polDeniedClass is ccxt's name for keywarden's policy denial in Binance's
// shape (-1002, "not authorized to execute this request"). It stays the same
// after successful calls, unlike -2015, which ccxt then takes for a ban.
const polDeniedClass = "AuthenticationError"

func polLimit(tag, symbol, side string, qty, price float64, deny string) polStep {
	return polStep{op: "createOrder", args: []any{symbol, "limit", side, qty, price, map[string]any{"newClientOrderId": tag}}, tag: tag, deny: deny}
}

func polMarket(symbol string, qty float64, deny string) polStep {
	return polStep{op: "createOrder", args: []any{symbol, "market", "buy", qty}, deny: deny}
}

func polWithdraw(tag, asset string, amount float64, address, memo, network, deny string) polStep {
	var m any
	if memo != "" {
		m = memo
	}
	return polStep{op: "withdraw", args: []any{asset, amount, address, m, map[string]any{"network": network, "withdrawOrderId": tag}}, tag: tag, deny: deny}
}

// polMarkets are ccxt spot markets for every symbol the cases trade.
func polMarkets(ids ...string) []map[string]any {
	var out []map[string]any
	for _, id := range ids {
		base := strings.TrimSuffix(id, "USDT")
		m := spotMarket(id, base, "USDT")
		m["info"] = map[string]any{"symbol": id, "orderTypes": []string{"LIMIT", "LIMIT_MAKER", "MARKET"}, "permissions": []string{"SPOT"}}
		out = append(out, m)
	}
	return out
}

// polHHMM formats t's time of day for trading_hours.
func polHHMM(t time.Time) string { return t.Format("15:04") }

// Addresses of the withdrawal cases.
const (
	polTron = "TXYZ1111111111111111111111111111111"
	polXRP  = "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh"
	polEVM  = "0x52908400098527886E0F7030069857D2E4169EE7"
	polNew  = "0x2222222222222222222222222222222222222222"
)

// polPolicies are the policies of TestPolicyRulesThroughGateway at now.
func polPolicies(now time.Time) map[string]policy.Definition {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		tokyo = time.UTC
	}
	tokyoName := tokyo.String()
	nowTokyo := now.In(tokyo)
	long := now.Add(-30 * 24 * time.Hour)
	return map[string]policy.Definition{
		// trader holds every per-order rule, and admits the caller on
		// every identity rule (venue, source address, trading hours).
		"trader": {
			Scopes:           []string{"read", "trade"},
			Venues:           []string{"BINANCE"},
			SourceIPs:        []string{"127.0.0.0/8", "::1"},
			Endpoints:        []string{"GET /api/v3/account", "POST /api/v3/order", "DELETE /api/v3/order", "DELETE /api/v3/openOrders"},
			TradingHours:     []policy.HoursDef{{From: polHHMM(now.Add(-2 * time.Hour)), To: polHHMM(now.Add(2 * time.Hour))}},
			Symbols:          []string{"BTCUSDT", "ETH*", "NOPX*"},
			DenySymbols:      []string{"*DOWNUSDT"},
			OrderTypes:       []string{"limit", "market"},
			Sides:            []string{"buy"},
			MaxOrderQty:      1,
			MaxOrderNotional: 10000,
			NotionalCurrency: "USDT",
			PriceBandPct:     5,
			Expressions: []policy.ExprDef{
				{Name: "small_orders", Expr: `call.orders.all(o, o.notional <= 1000.0)`},
				{Name: "no_cancel_all", Expr: `call.endpoint != "DELETE /api/v3/openOrders"`},
			},
		},
		"other-venue": {Scopes: []string{"read", "trade"}, Venues: []string{"okx"}},
		"office-only": {Scopes: []string{"read", "trade"}, SourceIPs: []string{"10.0.0.0/8", "192.0.2.7"}},
		// after-hours allows trading only in an hour that starts two
		// hours from now, Tokyo time.
		"after-hours": {Scopes: []string{"read", "trade"}, TradingHours: []policy.HoursDef{{
			From: polHHMM(nowTokyo.Add(2 * time.Hour)), To: polHHMM(nowTokyo.Add(3 * time.Hour)), TZ: tokyoName,
		}}},
		"treasury": {
			Scopes: []string{"read", "withdraw"},
			Withdraw: policy.WithdrawDef{Cooldown: "24h", Addresses: []policy.AddressDef{
				{Asset: "USDT", Network: "TRX", Address: polTron, MaxAmount: 500, AddedAt: long},
				{Asset: "XRP", Network: "XRP", Address: polXRP, Memo: "12345", AddedAt: long},
				{Asset: "USDT", Network: "ETH", Address: polEVM, AddedAt: long},
				{Asset: "USDT", Network: "BSC", Address: polNew, AddedAt: now.Add(-time.Hour)},
			}},
		},
		"win-cred": {Scopes: []string{"read", "trade"}, Windows: []policy.WindowDef{
			{Duration: "1h", MaxOrders: 3},
			{Duration: "24h", MaxNotional: 1500, Per: "credential"},
		}},
		"win-key": {Scopes: []string{"read", "trade"}, MaxOpenOrders: 2, Windows: []policy.WindowDef{
			{Duration: "1h", MaxOrders: 4, Per: "key"},
			{Duration: "1d", MaxNotional: 1500, Per: "key"},
		}},
	}
}

// polBots are the cases of TestPolicyRulesThroughGateway. BTCUSDT trades at
// 50000, ETHUSDT at 2500, and NOPXUSDT has no price.
func polBots() []polBot {
	return []polBot{
		{name: "trader", policy: "trader", steps: []polStep{
			{op: "fetchBalance"},
			// venue, source_ip, trading_hours, symbols, order_types,
			// sides, max_order_qty, max_order_notional, price_band and the
			// expressions all allow a small limit buy near the market.
			func() polStep {
				s := polLimit("kwp-tr-01", "BTC/USDT", "buy", 0.01, 49000, "")
				s.save = "id"
				return s
			}(),
			polLimit("kwp-tr-02", "ETH/USDT", "buy", 0.1, 2490, ""),
			polLimit("kwp-tr-03", "SOL/USDT", "buy", 1, 150, "symbol"),
			polLimit("kwp-tr-04", "ETHDOWN/USDT", "buy", 1, 1, "symbol"),
			func() polStep {
				s := polLimit("kwp-tr-05", "BTC/USDT", "buy", 0.01, 49000, "order_type")
				s.args[5] = map[string]any{"newClientOrderId": "kwp-tr-05", "postOnly": true} // LIMIT_MAKER
				return s
			}(),
			polLimit("kwp-tr-06", "BTC/USDT", "sell", 0.01, 50100, "side"),
			polLimit("kwp-tr-07", "BTC/USDT", "buy", 2, 49000, "max_order_qty"),
			polLimit("kwp-tr-08", "BTC/USDT", "buy", 0.5, 49000, "max_order_notional"),
			// A market order is valued at the simulator's ticker price,
			// fetched by the gateway: 0.01 × 50000 fits, 0.5 × 50000 does
			// not.
			polMarket("BTC/USDT", 0.01, ""),
			polMarket("BTC/USDT", 0.5, "max_order_notional"),
			polLimit("kwp-tr-09", "BTC/USDT", "buy", 0.01, 60000, "price_band"),
			polMarket("NOPX/USDT", 1, "reference_price"),
			polLimit("kwp-tr-10", "NOPX/USDT", "buy", 1, 5, "reference_price"),
			polLimit("kwp-tr-11", "BTC/USDT", "buy", 0.05, 49000, "expr:small_orders"),
			{op: "fetchOpenOrders", args: []any{"BTC/USDT"}, deny: "endpoint"},
			{op: "withdraw", args: []any{"USDT", 100, polTron, nil, map[string]any{"network": "TRX", "withdrawOrderId": "kwp-tr-12"}}, tag: "kwp-tr-12", deny: "scope"},
			{op: "cancelAllOrders", args: []any{"BTC/USDT"}, deny: "expr:no_cancel_all"},
			// Cancels need only the scope and the symbol.
			{op: "cancelOrder", args: []any{"$id", "BTC/USDT"}},
		}},
		{name: "other-venue", policy: "other-venue", steps: []polStep{
			{op: "fetchBalance", deny: "venue"},
		}},
		{name: "office-only", policy: "office-only", steps: []polStep{
			{op: "fetchBalance", deny: "source_ip"},
		}},
		{name: "after-hours", policy: "after-hours", steps: []polStep{
			// Reads are allowed at any hour, orders only in trading hours.
			{op: "fetchBalance"},
			polLimit("kwp-ah-01", "BTC/USDT", "buy", 0.01, 49000, "trading_hours"),
		}},
		{name: "expired", policy: "trader", ttl: time.Millisecond, steps: []polStep{
			// An expired credential is refused before the policy, like an
			// unknown one.
			{op: "fetchBalance", deny: "auth", msg: "invalid API key or signature"},
		}},
		{name: "treasury", policy: "treasury", steps: []polStep{
			polWithdraw("kwp-wd-01", "USDT", 100, polTron, "", "TRX", ""),
			// Base58 addresses are case-sensitive: one letter differs.
			polWithdraw("kwp-wd-02", "USDT", 100, strings.Replace(polTron, "XYZ", "XyZ", 1), "", "TRX", "withdraw_address"),
			polWithdraw("kwp-wd-03", "USDT", 600, polTron, "", "TRX", "withdraw_address"), // max_amount 500
			polWithdraw("kwp-wd-04", "XRP", 20, polXRP, "12345", "XRP", ""),
			polWithdraw("kwp-wd-05", "XRP", 20, polXRP, "54321", "XRP", "withdraw_address"),
			polWithdraw("kwp-wd-06", "XRP", 20, polXRP, "", "XRP", "withdraw_address"),
			// EVM addresses carry a checksum in their case and match in any
			// case. ccxt spells network ERC20 as Binance's ETH.
			polWithdraw("kwp-wd-07", "USDT", 100, strings.ToLower(polEVM), "", "ERC20", ""),
			// Listed an hour ago; the cool-down is a day.
			polWithdraw("kwp-wd-08", "USDT", 100, polNew, "", "BSC", "withdraw_address"),
			polLimit("kwp-wd-09", "BTC/USDT", "buy", 0.01, 49000, "scope"),
		}},
		// Window orders are limit buys at the market price, 50000, so each
		// is worth quantity × 50000.
		{name: "win-cred", policy: "win-cred",
			// The sibling's two orders (1000) use its own budget, not this
			// credential's: shared, kwp-wc-02 would be over the cap.
			siblings: []string{"quantity=0.01&price=50000", "quantity=0.01&price=50000"},
			steps: []polStep{
				polLimit("kwp-wc-01", "BTC/USDT", "buy", 0.01, 50000, ""),  // 500 of 1500, 1 of 3 orders
				polLimit("kwp-wc-02", "BTC/USDT", "buy", 0.019, 50000, ""), // 1450, 2
				polLimit("kwp-wc-03", "BTC/USDT", "buy", 0.002, 50000, "window_notional"),
				polLimit("kwp-wc-04", "BTC/USDT", "buy", 0.001, 50000, ""), // exactly 1500, 3
				polLimit("kwp-wc-05", "BTC/USDT", "buy", 0.0001, 50000, "window_orders"),
			}},
		{name: "win-key", policy: "win-key",
			// The sibling's order counts in this key's windows: 500, 1
			// order. Alone, kwp-wk-02 and the second market order would
			// fit.
			siblings: []string{"quantity=0.01&price=50000"},
			steps: []polStep{
				func() polStep {
					s := polLimit("kwp-wk-01", "BTC/USDT", "buy", 0.01, 50000, "") // 1000 of 1500, 2 of 4 orders, 1 open
					s.save = "id"
					return s
				}(),
				polLimit("kwp-wk-02", "BTC/USDT", "buy", 0.02, 50000, "window_notional"), // 2000
				polLimit("kwp-wk-03", "BTC/USDT", "buy", 0.001, 50000, ""),               // 1050, 3, 2 open
				polLimit("kwp-wk-04", "BTC/USDT", "buy", 0.001, 50000, "max_open_orders"),
				polMarket("BTC/USDT", 0.001, ""), // 1100, 4; market orders do not rest
				polMarket("BTC/USDT", 0.001, "window_orders"),
				// Cancels use no window budget.
				{op: "cancelOrder", args: []any{"$id", "BTC/USDT"}},
			}},
	}
}

// TestPolicyRulesThroughGateway: for every policy rule, an unmodified ccxt
// binance bot makes a call the rule allows and one it denies, through a
// real keywarden. A denied call reaches ccxt as Binance's -1002 error
// naming the rule, never reaches the simulator, and leaves exactly one
// denied audit record with that rule; an allowed call is forwarded once and
// leaves an intent and an outcome record.
func TestPolicyRulesThroughGateway(t *testing.T) {
	polNeedCCXT(t)
	now := time.Now().UTC()
	env := NewEnv(t, []string{"binance"}, polPolicies(now))
	kit := env.Sims["binance"].Kit
	kit.SetPrice("BTCUSDT", 50000)
	kit.SetPrice("ETHUSDT", 2500)
	kit.SetPrice("NOPXUSDT", 0) // the ticker answers 0: no reference price

	bots := polBots()
	keys := make([]Key, len(bots))
	creds := make([]*client.Issued, len(bots))
	jobs := make([]exchangetest.BotJob, len(bots))
	secrets := []string{Marker}
	wantAllowed, wantDenied := uint64(0), map[string]uint64{}
	for i, b := range bots {
		keys[i] = env.AddKey("binance", b.name, "read", "trade", "withdraw")
		acc, _ := kit.Account(keys[i].APIKey)
		acc.IPs = []string{"127.0.0.1"} // Binance withdraws only with an IP-restricted key
		acc.Balances["XRP"] = 1000
		ttl := b.ttl
		if ttl == 0 {
			ttl = time.Hour
		}
		iss, err := env.Clients.Issue(context.Background(), client.IssueOptions{Venue: "binance", Key: b.name, Policy: b.policy, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		creds[i] = iss
		secrets = append(secrets, keys[i].Secret, string(iss.Secret))
		if len(b.siblings) > 0 {
			polSiblings(t, env, b)
		}
		steps := make([]exchangetest.BotStep, len(b.steps))
		for j, s := range b.steps {
			steps[j] = exchangetest.BotStep{Op: s.op, Args: s.args, Save: s.save, SaveField: "id"}
			switch s.deny {
			case "":
				wantAllowed++
			case "auth": // refused before the policy
			default:
				wantDenied[s.deny]++
			}
		}
		wantAllowed += uint64(len(b.siblings))
		jobs[i] = exchangetest.BotJob{
			Exchange:    "binance",
			Credentials: map[string]string{"apiKey": iss.ID, "secret": string(iss.Secret)},
			HostMap:     map[string]string{"https://api.binance.com": env.URL + "/binance"},
			Markets:     polMarkets("BTCUSDT", "ETHUSDT", "SOLUSDT", "ETHDOWNUSDT", "NOPXUSDT"),
			Currencies:  currencies("BTC", "ETH", "USDT", "XRP"),
			Steps:       steps,
		}
	}

	results := polCCXTBots(t, jobs)
	// The gateway answers before it records the outcome; wait for it.
	env.Server.Gateway.Wait()
	simLog := kit.Log()
	recs := env.Records()
	// Market orders and price bands were judged against the simulator's
	// public ticker, which the gateway asked itself, without a key.
	tickers := map[string]int{}
	for _, l := range simLog {
		if l.Path == "/api/v3/ticker/price" && l.APIKey == "" && l.Header.Get("X-MBX-APIKEY") == "" {
			tickers[l.RawQuery]++
		}
	}
	for _, sym := range []string{"BTCUSDT", "ETHUSDT", "NOPXUSDT"} {
		if tickers["symbol="+sym] == 0 {
			t.Errorf("the gateway never read the ticker of %s; want its price from the simulator", sym)
		}
	}
	for i, b := range bots {
		t.Run(b.name, func(t *testing.T) {
			polCheckBot(t, env, b, keys[i], creds[i], results[i], simLog, recs)
		})
	}

	stats := env.Server.Engine.Stats()
	if stats.Allowed != wantAllowed {
		t.Errorf("engine allowed %d calls, want %d", stats.Allowed, wantAllowed)
	}
	if diff := cmp.Diff(wantDenied, stats.Denied); diff != "" {
		t.Errorf("engine denials by rule (-want +got):\n%s", diff)
	}
	env.CheckAudit(secrets...)
}

// polSiblings places b's sibling orders: another credential on b's key and
// policy, driven by a Go bot.
func polSiblings(t *testing.T, env *Env, b polBot) {
	t.Helper()
	sib, err := env.Clients.Issue(context.Background(), client.IssueOptions{Venue: "binance", Key: b.name, Policy: b.policy, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i, params := range b.siblings {
		body := fmt.Sprintf("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&%s&newClientOrderId=kwp-%s-sib%d", params, b.name, i)
		if status, msg := polSend(t, env, sib, body); status != http.StatusOK {
			t.Fatalf("sibling order %d = %d %s, want 200", i, status, msg)
		}
	}
}

// polNeedCCXT skips the test when ccxt is not installed, unless
// KEYWARDEN_REQUIRE_CCXT=1, as exchangetest.CCXTBot does.
func polNeedCCXT(t *testing.T) {
	t.Helper()
	dir := exchangetest.CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ccxt")); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("ccxt is not installed in %s (run: npm ci --prefix %s)", dir, dir)
		}
		t.Skipf("ccxt is not installed in %s; the project's test command installs it", dir)
	}
}

// polCCXTBots runs every job through exchangetest's bot.js, as
// exchangetest.CCXTBot does, but all at once: node's start-up dominates a
// job, and the cases are independent of each other.
func polCCXTBots(t *testing.T, jobs []exchangetest.BotJob) [][]exchangetest.BotResult {
	t.Helper()
	out := make([][]exchangetest.BotResult, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = polRunNode(job)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ccxt bot %d: %v", i, err)
		}
	}
	return out
}

func polRunNode(job exchangetest.BotJob) ([]exchangetest.BotResult, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := exchangetest.CCXTDir()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "bot.js"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bot.js: %w: %s", err, stderr.String())
	}
	var res []exchangetest.BotResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("bot.js output: %w: %s", err, raw)
	}
	if len(res) != len(job.Steps) {
		return nil, fmt.Errorf("bot ran %d of %d steps", len(res), len(job.Steps))
	}
	return res, nil
}

// polCheckBot checks what ccxt, the simulator and the audit log saw of one
// case.
func polCheckBot(t *testing.T, env *Env, b polBot, key Key, iss *client.Issued, res []exchangetest.BotResult, simLog []sim.Logged, recs []audit.Record) {
	// What ccxt saw.
	for i, s := range b.steps {
		r := res[i]
		if s.deny == "" {
			if !r.OK {
				t.Errorf("step %d %s %v: error %+v, want allowed", i, s.op, s.args, r.Error)
			}
			continue
		}
		if r.OK || r.Error == nil {
			t.Errorf("step %d %s %v: ok, want denied by %s", i, s.op, s.args, s.deny)
			continue
		}
		want := "keywarden policy denied (rule " + s.deny + "): "
		if s.msg != "" {
			want = s.msg
		}
		code := `"code":-1002`
		if s.deny == "auth" { // refused before the policy: Binance's invalid-key answer
			code = `"code":-2015`
		}
		if r.Error.Name != polDeniedClass || !strings.Contains(r.Error.Message, code) || !strings.Contains(r.Error.Message, want) {
			t.Errorf("step %d %s %v: error %s %q, want %s with %s and %q", i, s.op, s.args, r.Error.Name, r.Error.Message, polDeniedClass, code, want)
		}
	}
	for _, r := range res {
		env.AssertNoSecretIn("bot output", string(r.Result), key.Secret, key.APIKey)
		if r.Error != nil {
			env.AssertNoSecretIn("bot error", r.Error.Message, key.Secret, key.APIKey)
		}
	}

	// What the simulator saw: the allowed calls (and the siblings' orders),
	// each once, signed with the exchange key; none of the denied ones.
	seen := map[string]int{}
	got := 0
	for _, l := range simLog {
		if l.APIKey != key.APIKey {
			continue
		}
		got++
		if !l.Verified {
			t.Errorf("simulator refused %s %s: %s", l.Method, l.Path, l.Error)
		}
		for _, raw := range []string{l.RawQuery, string(l.Body)} {
			ps, err := url.ParseQuery(raw)
			if err != nil {
				t.Errorf("simulator request %s %s: %v", l.Method, l.Path, err)
				continue
			}
			for _, name := range []string{"newClientOrderId", "withdrawOrderId"} {
				for _, v := range ps[name] {
					seen[v]++
				}
			}
		}
		all := l.RawQuery + string(l.Body)
		if strings.Contains(all, iss.ID) || strings.Contains(all, string(iss.Secret)) {
			t.Errorf("simulator saw the client credential: %s %s", l.Method, l.Path)
		}
	}
	want := len(b.siblings)
	for i, s := range b.steps {
		wantSeen := 0
		if s.deny == "" {
			want++
			wantSeen = 1
		}
		if s.tag != "" && seen[s.tag] != wantSeen {
			t.Errorf("step %d %s %s reached the simulator %d times, want %d", i, s.op, s.tag, seen[s.tag], wantSeen)
		}
	}
	if got != want {
		t.Errorf("simulator received %d calls signed with the key, want %d", got, want)
	}

	// What the audit log holds for this credential, in order: one intent
	// per call, "allow" with an outcome or "deny" with the rule.
	var decisions, wantDecisions []string
	allowedIDs := map[string]bool{}
	for _, r := range recs {
		if r.Intent == nil || r.Intent.Client != iss.ID {
			continue
		}
		switch {
		case r.Type == audit.TypeIntent && r.Intent.Decision == "allow":
			decisions = append(decisions, "allow")
			allowedIDs[r.RequestID] = true
		case r.Type == audit.TypeDenied && r.Intent.Decision == "deny":
			decisions = append(decisions, "deny "+r.Intent.Rule)
			if r.Intent.Reason == "" {
				t.Errorf("denied record %s has no reason", r.RequestID)
			}
		default:
			decisions = append(decisions, fmt.Sprintf("%s %s %s", r.Type, r.Intent.Decision, r.Intent.Rule))
		}
	}
	for _, s := range b.steps {
		if s.deny == "" {
			wantDecisions = append(wantDecisions, "allow")
		} else {
			wantDecisions = append(wantDecisions, "deny "+s.deny)
		}
	}
	if diff := cmp.Diff(wantDecisions, decisions); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
	outcomes := 0
	for _, r := range recs {
		if r.Outcome != nil && allowedIDs[r.RequestID] {
			outcomes++
			if r.Outcome.Status != http.StatusOK {
				t.Errorf("outcome of %s: status %d, want 200", r.RequestID, r.Outcome.Status)
			}
		}
	}
	if outcomes != len(allowedIDs) {
		t.Errorf("%d outcome records for %d allowed calls", outcomes, len(allowedIDs))
	}
}

// polSend places one order as a Go bot: the body is signed with the client
// credential by keywarden's own Binance signer and posted to the gateway. It
// returns the status and body.
func polSend(t *testing.T, env *Env, iss *client.Issued, body string) (int, string) {
	t.Helper()
	req := &exchange.Request{Method: http.MethodPost, Path: "/api/v3/order", Header: http.Header{}, Body: []byte(body)}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret}
	if err := binance.Spot(nil).Signer.Sign(req, cred, time.Now()); err != nil {
		t.Errorf("sign: %v", err)
		return 0, ""
	}
	hr, err := http.NewRequest(req.Method, env.URL+"/binance"+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		t.Errorf("request: %v", err)
		return 0, ""
	}
	hr.Header = req.Header
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Errorf("post order: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// TestPolicyWindowConcurrency: 64 orders sent at once against a window that
// admits exactly 10 of them; exactly 10 reach the simulator, the other 54
// are denied by the window's rule, and the audit log agrees. With per = key
// the orders come from two credentials on the same key.
func TestPolicyWindowConcurrency(t *testing.T) {
	tests := []struct {
		name    string
		window  policy.WindowDef
		clients int
		rule    string
	}{
		{"orders per credential", policy.WindowDef{Duration: "1h", MaxOrders: 10}, 1, "window_orders"},
		// Each order is 0.01 × 50000 = 500 USDT; ten are exactly 5000.
		{"notional per key", policy.WindowDef{Duration: "24h", MaxNotional: 5000, Per: "key"}, 2, "window_notional"},
	}
	const orders, admitted = 64, 10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
				"burst": {Scopes: []string{"trade"}, Windows: []policy.WindowDef{tt.window}},
			})
			key := env.AddKey("binance", "main", "read", "trade")
			env.Sims["binance"].Kit.SetPrice("BTCUSDT", 50000)
			var creds []*client.Issued
			for range tt.clients {
				creds = append(creds, env.Issue("binance", "main", "burst"))
			}
			type answer struct {
				status int
				body   string
			}
			answers := make([]answer, orders)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range orders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					body := fmt.Sprintf("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=50000&newClientOrderId=kwp-burst-%02d", i)
					answers[i].status, answers[i].body = polSend(t, env, creds[i%len(creds)], body)
				}()
			}
			close(start)
			wg.Wait()
			env.Server.Gateway.Wait() // outcomes are recorded after the answer

			ok, denied := 0, 0
			for i, a := range answers {
				switch {
				case a.status == http.StatusOK:
					ok++
				case strings.Contains(a.body, "(rule "+tt.rule+")"):
					denied++
				default:
					t.Errorf("order %d: %d %s, want 200 or a %s denial", i, a.status, a.body, tt.rule)
				}
			}
			if ok != admitted || denied != orders-admitted {
				t.Errorf("%d orders allowed and %d denied, want %d and %d", ok, denied, admitted, orders-admitted)
			}
			if n := len(env.Sims["binance"].Kit.Orders(key.APIKey)); n != admitted {
				t.Errorf("simulator holds %d orders, want %d", n, admitted)
			}
			reached := 0
			for _, l := range env.Sims["binance"].Kit.Log() {
				if l.APIKey == key.APIKey {
					reached++
				}
			}
			if reached != admitted {
				t.Errorf("simulator received %d calls, want %d", reached, admitted)
			}
			got := Decisions(env.CheckAudit(key.Secret))
			want := map[string]int{"intent/allow/": admitted, "outcome": admitted, "denied/deny/" + tt.rule: orders - admitted}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("audit decisions (-want +got):\n%s", diff)
			}
		})
	}
}
