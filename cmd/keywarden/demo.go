package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

func newDemoCmd(a *app) *cobra.Command {
	var stay time.Duration
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run keywarden against local exchange simulators, with a scripted bot",
		Long: `demo starts, in this process and on loopback only: a simulator for every
supported exchange, a fresh vault in a temporary data directory, a gateway
with a sample policy, and a scripted bot that reads its balance, places and
cancels an order, and is denied a withdrawal and an oversized order. It prints
what happened and the audit trail. Nothing leaves this machine.

With --stay the gateway keeps running so you can point your own bot at it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), a, stay, keep)
		},
	}
	cmd.Flags().DurationVar(&stay, "stay", 0, "keep the gateway running this long after the script (e.g. 10m)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary data directory")
	return cmd
}

// demoPolicy is the sample policy the demo bot runs under.
var demoPolicy = policy.Definition{
	Scopes:           []string{"read", "trade"},
	Symbols:          []string{"BTCUSDT", "ETHUSDT"},
	MaxOrderNotional: 50000,
	NotionalCurrency: "USDT",
	PriceBandPct:     10,
	Windows:          []policy.WindowDef{{Duration: "1m", MaxOrders: 100}},
}

func runDemo(ctx context.Context, a *app, stay time.Duration, keep bool) error {
	out := a.stdout
	if a.cfg.LogLevel != "debug" {
		// The demo tells its story on stdout; only problems go to the log.
		a.log = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	dir, err := os.MkdirTemp("", "keywarden-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	fmt.Fprintf(out, "keywarden demo — everything runs on loopback; data in %s\n\n", dir)

	// Simulators, one per exchange.
	kits := map[string]*sim.Kit{}
	simURLs := map[string]string{}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var rs []server.Route
	for _, d := range venues.Known() {
		if _, ok := kits[d.Exchange]; !ok {
			kit := sim.NewKit()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: d.Simulator(kit), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = hs.Serve(ln) }()
			closers = append(closers, func() { hs.Close() })
			kits[d.Exchange] = kit
			simURLs[d.Exchange] = "http://" + ln.Addr().String()
		}
		u, _ := url.Parse(simURLs[d.Exchange])
		rs = append(rs, server.Route{Def: d, Upstream: u})
	}
	fmt.Fprintf(out, "1. Started %d exchange simulators (binance at %s).\n", len(kits), simURLs["binance"])

	// A vault with the exchange key.
	db, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(dir, "data"), Logger: a.log})
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := vault.New(vault.Options{Store: db, Logger: a.log})
	if err != nil {
		return err
	}
	pass := make([]byte, 32)
	if _, err := rand.Read(pass); err != nil {
		return err
	}
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: pass}); err != nil {
		return err
	}
	clear(pass)
	exKey, exSecret := "demo"+randHex(24), randHex(32)
	kits["binance"].AddAccount(sim.Account{
		Key:         exchange.Credential{Kind: exchange.KeyHMAC, APIKey: exKey, Secret: exchange.Secret(exSecret)},
		Permissions: map[string]bool{"read": true, "trade": true, "withdraw": true},
	})
	kits["binance"].SetPrice("BTCUSDT", 50000)
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "main", APIKey: exKey,
		Secret: exchange.Secret(exSecret), Scopes: []string{"read", "trade"}}); err != nil {
		return err
	}
	fmt.Fprintf(out, "2. Sealed the binance exchange key \"binance/main\" in a new vault (the bot never sees it).\n")

	pols, err := policy.CompileAll(map[string]policy.Definition{"demo-trader": demoPolicy})
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Options{Store: db, Vault: v, Policies: pols, Routes: rs,
		AuditDir: filepath.Join(dir, "audit"), UpstreamTimeout: 5 * time.Second, Logger: a.log})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Gateway, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	base := "http://" + ln.Addr().String()

	def, _ := venues.ByName("binance")
	iss, err := srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "main", Policy: "demo-trader", TTL: 24 * time.Hour, Format: def.Format})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "3. Gateway on %s with policy demo-trader (read+trade, BTCUSDT/ETHUSDT, max 50000 USDT per order).\n", base)
	fmt.Fprintf(out, "   Issued the bot a client credential: API key %s (secret shown once to the bot).\n\n", iss.ID)

	// The scripted bot signs with its client credential, as any Binance
	// client would, and calls the gateway.
	bot := &demoBot{base: base + "/binance", venue: def.Build(mustURL(base)), cred: &exchange.Credential{
		Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret}, hc: &http.Client{Timeout: 10 * time.Second}}
	fmt.Fprintln(out, "4. The bot trades through keywarden:")
	steps := []struct {
		what, method, path, query string
	}{
		{"read balances", "GET", "/api/v3/account", ""},
		{"place a limit order", "POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=49500"},
		{"cancel it", "DELETE", "/api/v3/order", "symbol=BTCUSDT&orderId=$id"},
		{"withdraw 1 BTC", "POST", "/sapi/v1/capital/withdraw/apply", "coin=BTC&network=BTC&address=bc1qattackeraddress0000000000000000000&amount=1"},
		{"buy 10 BTC (over the cap)", "POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=10&price=49500"},
		{"pump an illiquid coin", "POST", "/api/v3/order", "symbol=VIABTC&side=BUY&type=MARKET&quantity=1000"},
	}
	var orderID string
	for _, s := range steps {
		q := strings.ReplaceAll(s.query, "$id", orderID)
		status, body, err := bot.call(ctx, s.method, s.path, q)
		if err != nil {
			return fmt.Errorf("demo bot: %w", err)
		}
		verdict := "allowed"
		if status >= 400 {
			verdict = "refused"
		}
		fmt.Fprintf(out, "   - %-26s %s %-32s → %d %s: %s\n", s.what, s.method, s.path, status, verdict, summarize(body))
		if s.path == "/api/v3/order" && s.method == "POST" && status == 200 && orderID == "" {
			var o struct {
				OrderID json.Number `json:"orderId"`
			}
			_ = json.Unmarshal(body, &o)
			orderID = o.OrderID.String()
		}
	}
	signed, public := 0, 0
	for _, l := range kits["binance"].Log() {
		switch {
		case l.APIKey == exKey && l.Verified:
			signed++
		case l.APIKey == "":
			public++
		}
	}
	lookups := "public price lookups"
	if public == 1 {
		lookups = "public price lookup"
	}
	fmt.Fprintf(out, "\n5. The exchange simulator received %d requests signed with the exchange key (and %d %s by keywarden);\n   the refused calls never left keywarden.\n\n", signed, public, lookups)

	srv.Gateway.Wait()
	if err := srv.Audit.Sync(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "6. The audit trail (hash-chained; every intent durable before forwarding):")
	for r, err := range audit.Search(filepath.Join(dir, "audit"), audit.Filter{}) {
		if err != nil {
			return err
		}
		switch {
		case r.Intent != nil:
			in := r.Intent
			line := fmt.Sprintf("   #%d %-8s %s %s %s", r.Seq, r.Type, in.Decision, in.Method, in.Path)
			if in.Rule != "" {
				line += fmt.Sprintf(" — rule %s: %s", in.Rule, in.Reason)
			}
			fmt.Fprintln(out, line)
		case r.Outcome != nil:
			line := fmt.Sprintf("   #%d outcome  status %d", r.Seq, r.Outcome.Status)
			if r.Outcome.VenueOrderID != "" {
				line += " order " + r.Outcome.VenueOrderID
			}
			fmt.Fprintln(out, line)
		}
	}
	pub, err := server.AuditPublicKey(ctx, v)
	if err != nil {
		return err
	}
	rep, err := audit.Verify(filepath.Join(dir, "audit"), pub)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	fmt.Fprintf(out, "   audit verify: %d records, chain intact.\n", rep.Records)

	if stay > 0 {
		fmt.Fprintf(out, "\nThe gateway stays up for %s at %s/binance (API key %s, secret %s). Ctrl-C to stop.\n",
			stay, base, iss.ID, string(iss.Secret))
		select {
		case <-time.After(stay):
		case <-ctx.Done():
		}
	}
	fmt.Fprintln(out, "\nDone. Read the README for running keywarden with your own keys.")
	return nil
}

// demoBot signs Binance requests with a client credential, like any Binance
// client library would.
type demoBot struct {
	base  string
	venue exchange.Venue
	cred  *exchange.Credential
	hc    *http.Client
}

func (b *demoBot) call(ctx context.Context, method, path, query string) (int, []byte, error) {
	r := &exchange.Request{Method: method, Path: path, RawQuery: query, Header: http.Header{}}
	if err := b.venue.Signer.Sign(r, b.cred, time.Now()); err != nil {
		return 0, nil, err
	}
	u := b.base + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(string(r.Body)))
	if err != nil {
		return 0, nil, err
	}
	req.Header = r.Header
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

func summarize(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 140 {
		s = s[:140] + "…"
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
