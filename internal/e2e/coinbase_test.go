package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/vault"
)

// coinbaseCDPKey is a Coinbase CDP key pair in the shapes the parties hold
// it: ccxt's secret (SEC 1 PEM for EC, base64 seed||public for Ed25519), the
// vault's secret (PEM), and the public key PEM keywarden issues against.
type coinbaseCDPKey struct {
	kind      exchange.KeyKind
	ccxt      string // what a bot passes to ccxt as its secret
	vaultPEM  string // what the vault stores for an exchange key
	public    string // PKIX PEM
	publicKey any
}

func newCoinbaseCDPKey(t *testing.T, kind exchange.KeyKind) coinbaseCDPKey {
	t.Helper()
	k := coinbaseCDPKey{kind: kind}
	var pub any
	switch kind {
	case exchange.KeyECDSA:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		k.ccxt = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
		k.vaultPEM = k.ccxt
		pub = &priv.PublicKey
	case exchange.KeyEd25519:
		pk, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		// A CDP Ed25519 secret is base64 of the 32-byte seed followed by
		// the 32-byte public key (88 characters), which is how ccxt tells it
		// from an EC key.
		k.ccxt = base64.StdEncoding.EncodeToString(priv)
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		k.vaultPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		pub = pk
	default:
		t.Fatalf("no CDP keys of kind %s", kind)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k.public = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	k.publicKey = pub
	return k
}

// coinbaseAddCDPKey registers a CDP exchange key of kind at the simulator
// (public key only, as Coinbase holds it) and in the vault as
// exchange/name (private key PEM). It returns the key name and the PEM.
func coinbaseAddCDPKey(t *testing.T, env *Env, name string, kind exchange.KeyKind, perms ...string) Key {
	t.Helper()
	k := newCoinbaseCDPKey(t, kind)
	keyName := "organizations/exorg" + randHex(4) + "/apiKeys/EXKEY" + randHex(8)
	p := map[string]bool{}
	for _, x := range perms {
		p[x] = true
	}
	env.Sims["coinbase"].Kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: kind, APIKey: keyName, PublicKey: k.publicKey}, Permissions: p})
	_, err := env.Vault.AddKey(context.Background(), vault.KeyInput{Exchange: "coinbase", Name: name, APIKey: keyName,
		Account: keyName, Secret: exchange.Secret(k.vaultPEM), Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return Key{APIKey: keyName, Secret: k.vaultPEM}
}

// coinbaseBot is a bot's view of its keywarden credential: what it passes
// to ccxt, and what must never leave it.
type coinbaseBot struct {
	apiKey, secret string
	iss            *client.Issued
}

// coinbaseIssue issues a client credential of kind for key under pol. For
// CDP kinds the bot keeps its private key; keywarden gets only the public key
// and names the credential like a CDP key.
func coinbaseIssue(t *testing.T, env *Env, kind exchange.KeyKind, key, pol string) coinbaseBot {
	t.Helper()
	opts := client.IssueOptions{Venue: "coinbase", Key: key, Policy: pol, TTL: time.Hour, Kind: kind, Format: env.Sims["coinbase"].Def.Format}
	var bk coinbaseCDPKey
	if kind != exchange.KeyHMAC {
		bk = newCoinbaseCDPKey(t, kind)
		opts.PublicKeyPEM = bk.public
	}
	iss, err := env.Clients.Issue(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if kind == exchange.KeyHMAC {
		return coinbaseBot{apiKey: iss.ID, secret: string(iss.Secret), iss: iss}
	}
	if !strings.HasPrefix(iss.ID, "organizations/keywarden/apiKeys/kw") {
		t.Fatalf("issued id %q, want a CDP key name", iss.ID)
	}
	return coinbaseBot{apiKey: iss.ID, secret: bk.ccxt, iss: iss}
}

// coinbaseTicker is the public ticker keywarden reads reference prices from.
const coinbaseTicker = "/api/v3/brokerage/market/products/BTC-USD/ticker"

func coinbaseJob(env *Env, bot coinbaseBot, steps ...exchangetest.BotStep) exchangetest.BotJob {
	return exchangetest.BotJob{
		Exchange:    "coinbase",
		Credentials: map[string]string{"apiKey": bot.apiKey, "secret": bot.secret},
		HostMap:     map[string]string{"https://api.coinbase.com": env.URL + "/coinbase"},
		Markets:     []map[string]any{spotMarket("BTC-USD", "BTC", "USD"), spotMarket("ETH-USD", "ETH", "USD")},
		Currencies:  currencies("BTC", "ETH", "USD", "USDC"),
		Steps:       steps,
	}
}

// venueCheckForwarded checks what a simulator logged. Requests to
// tickerPath are keywarden's own reference-price lookups: public, unsigned,
// and counted in the result. Every other request must have been signed with
// the exchange key and verified there; want lists their "METHOD path" in
// order. No request may carry a trace of the bot's credential.
func venueCheckForwarded(t *testing.T, log []sim.Logged, tickerPath, exchangeKey string, clientSecrets []string, want []string) (tickers int) {
	t.Helper()
	var got []string
	for _, l := range log {
		all := l.Path + "?" + l.RawQuery + string(l.Body)
		for k, vs := range l.Header {
			all += k + ":" + strings.Join(vs, ",")
		}
		for _, s := range clientSecrets {
			if s != "" && strings.Contains(all, s) {
				t.Errorf("simulator saw the client credential in %s %s", l.Method, l.Path)
			}
		}
		if l.Path == tickerPath && l.Method == "GET" {
			tickers++
			if l.APIKey != "" || l.Error != "" {
				t.Errorf("ticker lookup %s?%s was signed by %q (error %q), want a public request", l.Path, l.RawQuery, l.APIKey, l.Error)
			}
			continue
		}
		got = append(got, l.Method+" "+l.Path)
		if l.APIKey != exchangeKey || !l.Verified || l.Error != "" {
			t.Errorf("simulator saw %s %s with key %q verified=%v error=%q, want the exchange key %q", l.Method, l.Path, l.APIKey, l.Verified, l.Error, exchangeKey)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("simulator requests (-want +got):\n%s", diff)
	}
	return tickers
}

// venueExpectSteps checks which bot steps succeeded.
func venueExpectSteps(t *testing.T, res []exchangetest.BotResult, want ...bool) {
	t.Helper()
	for i, w := range want {
		if res[i].OK != w {
			t.Errorf("step %d %s ok = %v, want %v: error %+v result %s", i, res[i].Op, res[i].OK, w, res[i].Error, res[i].Result)
		}
	}
}

// venueResultString reads a string field of a step's result.
func venueResultString(t *testing.T, r exchangetest.BotResult, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Result, &m); err != nil {
		t.Fatalf("step %s result %s: %v", r.Op, r.Result, err)
	}
	s, _ := m[field].(string)
	return s
}

// TestCCXTCoinbaseThroughGateway: unmodified ccxt coinbase bots, with CDP
// keys (ES256 and EdDSA JWTs) and with a legacy HMAC key, pointed at
// keywarden, read their balance, place and cancel a limit order, and are
// denied a send; the simulator sees only requests signed with the exchange
// key, a CDP key or a legacy HMAC one.
func TestCCXTCoinbaseThroughGateway(t *testing.T) {
	tests := []struct {
		name           string
		client, server exchange.KeyKind
	}{
		{"ecdsa client, ecdsa key", exchange.KeyECDSA, exchange.KeyECDSA},
		{"ed25519 client, ed25519 key", exchange.KeyEd25519, exchange.KeyEd25519},
		{"legacy hmac client, ecdsa key", exchange.KeyHMAC, exchange.KeyECDSA},
		{"ecdsa client, legacy hmac key", exchange.KeyECDSA, exchange.KeyHMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := NewEnv(t, []string{"coinbase"}, map[string]policy.Definition{
				"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USD"}, MaxOrderNotional: 100000, NotionalCurrency: "USD"},
			})
			kit := env.Sims["coinbase"].Kit
			kit.SetPrice("BTC-USD", 50000)
			perms := []string{"read", "trade", "transfer", "withdraw"}
			var key Key
			if tt.server == exchange.KeyHMAC {
				key = env.AddKey("coinbase", "main", perms...)
			} else {
				key = coinbaseAddCDPKey(t, env, "main", tt.server, perms...)
			}
			bot := coinbaseIssue(t, env, tt.client, "main", "trader")
			res := exchangetest.CCXTBot(t, coinbaseJob(env, bot,
				exchangetest.BotStep{Op: "fetchBalance"},
				exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "limit", "buy", 0.01, 49000}, Save: "id", SaveField: "id"},
				exchangetest.BotStep{Op: "cancelOrder", Args: []any{"$id", "BTC/USD"}},
				exchangetest.BotStep{Op: "withdraw", Args: []any{"USDC", 100, "0x1111111111111111111111111111111111111111"}},
			))
			venueExpectSteps(t, res, true, true, true, false)

			var bal map[string]any
			if err := json.Unmarshal(res[0].Result, &bal); err != nil {
				t.Fatal(err)
			}
			if free, _ := bal["free"].(map[string]any); free["BTC"] != 10.0 || free["USD"] != 100000.0 {
				t.Errorf("fetchBalance free = %v, want BTC 10 and USD 100000", bal["free"])
			}
			placed := kit.Orders(key.APIKey)
			if len(placed) != 1 || placed[0].Status != "CANCELED" || placed[0].Symbol != "BTC-USD" || placed[0].Price != 49000 || placed[0].Quantity != 0.01 {
				t.Errorf("simulator orders = %+v, want one canceled BTC-USD 0.01 @ 49000", placed)
			}
			id := venueResultString(t, res[1], "id")
			if len(placed) == 1 && id != placed[0].ID {
				t.Errorf("createOrder id = %q, want the simulator's %q", id, placed[0].ID)
			}
			if got := venueResultString(t, res[2], "id"); got != id {
				t.Errorf("cancelOrder id = %q, want %q", got, id)
			}
			if e := res[3].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule scope") {
				t.Errorf("withdraw error = %+v, want PermissionDenied naming the scope rule", e)
			}

			// ccxt looks the USDC account up before the send; the send
			// itself never reaches the simulator.
			venueCheckForwarded(t, kit.Log(), coinbaseTicker, key.APIKey, []string{bot.apiKey, bot.secret}, []string{
				"GET /v2/accounts",
				"POST /api/v3/brokerage/orders",
				"POST /api/v3/brokerage/orders/batch_cancel",
				"GET /api/v3/brokerage/accounts",
			})
			for _, r := range res {
				env.AssertNoSecretIn("bot output", string(r.Result)+r.Op, key.Secret, key.APIKey)
				if r.Error != nil {
					env.AssertNoSecretIn("bot error", r.Error.Message, key.Secret, key.APIKey)
				}
			}
			got := Decisions(env.CheckAudit(key.Secret, bot.secret))
			want := map[string]int{"intent/allow/": 4, "outcome": 4, "denied/deny/scope": 1}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("audit decisions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCCXTCoinbaseOrderDenied: a policy with a notional cap and a price band
// denies a market order whose value only the reference price (the venue's
// public ticker) reveals, a small limit order priced far from that ticker,
// and an order on a symbol it does not list; ccxt raises PermissionDenied,
// and none of them reaches the simulator, while a small market order does.
func TestCCXTCoinbaseOrderDenied(t *testing.T) {
	env := NewEnv(t, []string{"coinbase"}, map[string]policy.Definition{
		"small": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTC-USD"}, MaxOrderNotional: 1000, NotionalCurrency: "USD", PriceBandPct: 5},
	})
	kit := env.Sims["coinbase"].Kit
	kit.SetPrice("BTC-USD", 50000)
	key := coinbaseAddCDPKey(t, env, "main", exchange.KeyECDSA, "read", "trade")
	bot := coinbaseIssue(t, env, exchange.KeyECDSA, "main", "small")
	res := exchangetest.CCXTBot(t, coinbaseJob(env, bot,
		// 0.01 BTC at the ticker's 50000 is 500 USD: allowed.
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "market", "sell", 0.01}},
		// 0.1 BTC is 5000 USD: over the cap, though the request names no price.
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "market", "sell", 0.1}},
		// A limit order under the cap on a symbol the policy does not list.
		exchangetest.BotStep{Op: "createOrder", Args: []any{"ETH/USD", "limit", "buy", 0.1, 2000}},
		// Small, but priced 20% above the ticker: outside the 5% band.
		exchangetest.BotStep{Op: "createOrder", Args: []any{"BTC/USD", "limit", "buy", 0.001, 60000}},
	))
	venueExpectSteps(t, res, true, false, false, false)
	if e := res[1].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule max_order_notional") {
		t.Errorf("large market order error = %+v, want PermissionDenied naming the notional cap", e)
	}
	if e := res[2].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule symbol") {
		t.Errorf("ETH-USD order error = %+v, want PermissionDenied naming the symbol rule", e)
	}
	if e := res[3].Error; e == nil || e.Name != "PermissionDenied" || !strings.Contains(e.Message, "rule price_band") {
		t.Errorf("off-band order error = %+v, want PermissionDenied naming the price band", e)
	}

	var orders []string
	for _, l := range kit.Log() {
		if l.Path == "/api/v3/brokerage/orders" {
			orders = append(orders, string(l.Body))
		}
	}
	if len(orders) != 1 || !strings.Contains(orders[0], `"base_size":"0.01"`) {
		t.Errorf("simulator received orders %q, want only the 0.01 BTC one", orders)
	}
	tickers := venueCheckForwarded(t, kit.Log(), coinbaseTicker, key.APIKey, []string{bot.apiKey, bot.secret},
		[]string{"POST /api/v3/brokerage/orders"})
	if tickers == 0 {
		t.Errorf("keywarden never read the BTC-USD ticker, want it as the market order's reference price")
	}
	got := Decisions(env.CheckAudit(key.Secret, bot.secret))
	want := map[string]int{"intent/allow/": 1, "outcome": 1, "denied/deny/max_order_notional": 1, "denied/deny/symbol": 1, "denied/deny/price_band": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}
