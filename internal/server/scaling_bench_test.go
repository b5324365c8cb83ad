//go:build unix

package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// BenchmarkScaling measures the whole gateway (server.New as `keywarden
// serve` assembles it: client registry, vault, policy engine, audit log
// without flushes, Binance verify/describe/sign, forwarding over loopback
// to a stub venue) along one dimension at a time, the others held at their
// base: client credentials registered, exchange keys in the vault, policy
// rules, and the size of the request. docs/performance.md has the figures;
// the audit flush is left out so the figures are CPU, not the disk.
func BenchmarkScaling(b *testing.B) {
	type dims struct{ clients, keys, symbols, exprs, pad int }
	base := dims{clients: 1, keys: 1, symbols: 2, exprs: 0, pad: 0}
	cases := []struct {
		name string
		d    dims
	}{
		{"base", base},
		{"clients=100", dims{100, 1, 2, 0, 0}},
		{"clients=10000", dims{10000, 1, 2, 0, 0}},
		{"keys=100", dims{1, 100, 2, 0, 0}},
		{"keys=1000", dims{1, 1000, 2, 0, 0}},
		{"rules=50", dims{1, 1, 40, 0, 0}},
		{"rules=50+cel=8", dims{1, 1, 40, 8, 0}},
		{"rules=200+cel=32", dims{1, 1, 160, 32, 0}},
		{"body=2KiB", dims{1, 1, 2, 0, 2 << 10}},
		{"body=16KiB", dims{1, 1, 2, 0, 16 << 10}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			d := tc.d
			env := newScalingEnv(b, d.clients, d.keys, scalingPolicy(d.symbols, d.exprs))
			// The request grows by a long value of a parameter Binance
			// takes on orders (strategyType, an integer; the stub venue
			// does not mind its size).
			pad := ""
			if d.pad > 0 {
				pad = "&strategyType=" + strings.Repeat("1", d.pad)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			n := 0
			for ; b.Loop(); n++ {
				env.order(b, n, pad)
			}
			// CPU time of the process (gateway, audit writer and the stub
			// venue together) per request: steadier than the wall time on
			// a shared machine.
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
		})
	}
}

// scalingPolicy allows the benchmark's orders with symbols allowed symbol
// globs (the order's own last) and exprs CEL expressions that all hold.
func scalingPolicy(symbols, exprs int) policy.Definition {
	d := policy.Definition{Scopes: []string{"read", "trade"}, Venues: []string{"binance"},
		OrderTypes: []string{"limit"}, Sides: []string{"buy", "sell"}, MaxOrderQty: 10}
	for i := 1; i < symbols; i++ {
		d.Symbols = append(d.Symbols, fmt.Sprintf("C%03dUSDT", i))
	}
	d.Symbols = append(d.Symbols, "BTCUSDT")
	for i := 0; i < exprs; i++ {
		d.Expressions = append(d.Expressions, policy.ExprDef{Name: "e" + strconv.Itoa(i),
			Expr: fmt.Sprintf(`call.orders.all(o, o.qty <= %d.0) && call.venue == "binance"`, 10+i)})
	}
	return d
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type scalingEnv struct {
	gw     http.Handler
	creds  []*exchange.Credential
	signer exchange.Signer
}

func newScalingEnv(b *testing.B, clients, keys int, pol policy.Definition) *scalingEnv {
	b.Helper()
	ctx := context.Background()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v3/ticker/price" {
			// The policy's price source (orders seen by expressions get
			// a notional), as the venue answers it.
			w.Write([]byte(`{"symbol":"BTCUSDT","price":"50000.00"}`))
			return
		}
		w.Write([]byte(`{"symbol":"BTCUSDT","orderId":28,"clientOrderId":"x","status":"NEW"}`))
	}))
	b.Cleanup(up.Close)
	db := memory.New()
	v, err := vault.New(vault.Options{Store: db})
	if err != nil {
		b.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("scaling benchmark passphrase"), KDF: &kdf}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < keys; i++ {
		if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: "k" + strconv.Itoa(i),
			APIKey: fmt.Sprintf("EXKEY%08d", i), Secret: exchange.Secret(fmt.Sprintf("exsecret%08d-scaling", i)),
			Kind: exchange.KeyHMAC}); err != nil {
			b.Fatal(err)
		}
	}
	pols, err := policy.CompileAll(map[string]policy.Definition{"p": pol})
	if err != nil {
		b.Fatal(err)
	}
	def, err := venues.ByName("binance")
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse(up.URL)
	srv, err := server.New(ctx, server.Options{Store: db, Vault: v, Policies: pols, AuditDir: b.TempDir(),
		AuditNoSync: true, Routes: []server.Route{{Def: def, Upstream: u}}, UpstreamTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	env := &scalingEnv{gw: srv.Gateway, signer: binance.Spot(nil).Signer}
	for i := 0; i < clients; i++ {
		iss, err := srv.Clients.Issue(ctx, client.IssueOptions{Venue: "binance", Key: "k" + strconv.Itoa(i%keys),
			Policy: "p", TTL: time.Hour, Format: def.Format})
		if err != nil {
			b.Fatal(err)
		}
		// The benchmark signs with the last 8 credentials issued: the
		// registry holds them all, the lookups spread over several.
		if clients-i <= 8 {
			env.creds = append(env.creds, &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: iss.Secret})
		}
	}
	return env
}

func (e *scalingEnv) order(b *testing.B, i int, pad string) {
	body := "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=50000&newClientOrderId=s" +
		strconv.Itoa(i) + "t" + strconv.FormatInt(time.Now().UnixNano(), 36) + pad
	r := &exchange.Request{Method: http.MethodPost, Path: "/api/v3/order", Header: http.Header{}, Body: []byte(body)}
	if err := e.signer.Sign(r, e.creds[i%len(e.creds)], time.Now()); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/binance/api/v3/order", strings.NewReader(string(r.Body)))
	req.Header = r.Header
	req.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	e.gw.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
}
