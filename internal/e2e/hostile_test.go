package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// The hostile-request battery (spec/security.md §4 A-series) and the secret
// hygiene checks of the gateway path (H-series). Every case is sent as exact
// bytes over TCP to a gateway served with the settings `keywarden serve`
// uses (shorter timeouts), and judged by the default pass rule of §3:
//
//  1. the status (in Binance's error shape where the gateway answers);
//  2. the simulator receives nothing and keywarden dials nothing but the
//     simulator; canary listeners standing in for 127.0.0.2:80,
//     127.0.0.1:6379 and a cloud metadata address are never connected to;
//  3. exactly one audit record with a reason code for each refusal the
//     gateway itself makes (net/http refuses broken framing before the
//     gateway sees a request, so those leave none);
//  4. no exchange secret, client secret or Marker in any response.
//
// At the end every log line (debug level), server error log line,
// monitoring observation and audit file is scanned for the same canaries.
//
// Known departures from the spec are listed per case and check in gaps and
// skipped with their reason; KEYWARDEN_HOSTILE_NOGAP=1 runs them anyway, to
// see which are fixed.

const hostilePassphrase = "correct horse battery " + Marker

// Server settings: as cmd/keywarden/serve.go, with short timeouts.
const (
	hostileReadHeaderTimeout = 400 * time.Millisecond
	hostileReadTimeout       = 1500 * time.Millisecond
	hostileMaxHeaderBytes    = 12 << 10 // as keywarden serve: net/http allows 4 KiB more
)

// Withdrawal addresses of the treasury policy.
const (
	hostileTron = "TXYZ1111111111111111111111111111111"
	hostileXRP  = "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// canary is a listener nothing may ever connect to.
type canary struct {
	addr string
	n    atomic.Int64
}

// startCanary listens on the first of addrs that can be bound and counts
// every connection it accepts.
func startCanary(t *testing.T, addrs ...string) *canary {
	t.Helper()
	var ln net.Listener
	var err error
	for _, a := range addrs {
		if ln, err = net.Listen("tcp", a); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("canary listen %v: %v", addrs, err)
	}
	c := &canary{addr: ln.Addr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for { // ends when the listener closes
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.n.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return c
}

// hostileEnv is a keywarden assembled like Env, with a debug logger, a log
// of every address the gateway dials, canaries, and a gateway served with
// serve.go's settings.
type hostileEnv struct {
	*Env
	addr     string // gateway host:port
	logs     *syncBuffer
	errLog   *syncBuffer
	simAddr  string
	canaries []*canary
	metadata *canary // stands in for 169.254.169.254
	admin    *hostileAdmin

	mu    sync.Mutex
	dials []string
	obs   []gateway.Observation

	creds   map[string]*client.Issued
	key     Key
	secrets []string
	seen    map[string]hostileResult
	root    *testing.T
	recMark int
	simMark int
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	ctx := context.Background()
	h := &hostileEnv{logs: &syncBuffer{}, errLog: &syncBuffer{}, creds: map[string]*client.Issued{}, seen: map[string]hostileResult{}}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	dir := t.TempDir()
	db, err := sqlite.Open(ctx, sqlite.Options{Dir: dir + "/data"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v, err := vault.New(vault.Options{Store: db, Logger: logger.With("component", "vault")})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte(hostilePassphrase), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-30 * 24 * time.Hour)
	defs := map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, Symbols: []string{"BTCUSDT", "ETHUSDT", "NOPXUSDT"},
			MaxOrderNotional: 1000, NotionalCurrency: "USDT", PriceBandPct: 5},
		"reader":  {Scopes: []string{"read"}},
		"plain":   {Scopes: []string{"read", "trade"}},
		"futures": {Scopes: []string{"read", "trade"}},
		"treasury": {Scopes: []string{"read", "withdraw"}, Withdraw: policy.WithdrawDef{Addresses: []policy.AddressDef{
			{Asset: "USDT", Network: "TRX", Address: hostileTron, AddedAt: long},
			{Asset: "XRP", Network: "XRP", Address: hostileXRP, Memo: "12345", AddedAt: long},
		}}},
	}
	compiled, err := policy.CompileAll(defs)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, Vault: v, Sims: map[string]*Sim{}, AuditDir: dir + "/audit"}
	var routes []server.Route
	kit := sim.NewKit()
	for _, n := range []string{"binance", "binance-usdm"} {
		def, err := venues.ByName(n)
		if err != nil {
			t.Fatal(err)
		}
		s := &Sim{Def: def, Kit: kit}
		if n == "binance" {
			srv := httptest.NewServer(def.Simulator(kit))
			t.Cleanup(srv.Close)
			h.simAddr = srv.Listener.Addr().String()
			s.URL = srv.URL
		} else {
			s.URL = e.Sims["binance"].URL // one simulator per exchange
		}
		e.Sims[n] = s
		u, _ := url.Parse(s.URL)
		routes = append(routes, server.Route{Def: def, Upstream: u})
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	e.Server, err = server.New(ctx, server.Options{Store: db, Vault: v, Policies: compiled, Routes: routes,
		AuditDir: e.AuditDir, UpstreamTimeout: 5 * time.Second, Logger: logger,
		Transport: gateway.TransportOptions{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			h.mu.Lock()
			h.dials = append(h.dials, addr)
			h.mu.Unlock()
			return dialer.DialContext(ctx, network, addr)
		}},
		Observe: func(o gateway.Observation) {
			h.mu.Lock()
			h.obs = append(h.obs, o)
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Server.Close() })
	e.Clients = e.Server.Clients
	if e.AuditPub, err = server.AuditPublicKey(ctx, v); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.Server.Gateway)
	srv.Config.ReadHeaderTimeout = hostileReadHeaderTimeout
	srv.Config.ReadTimeout = hostileReadTimeout
	srv.Config.WriteTimeout = 10 * time.Second
	srv.Config.IdleTimeout = 10 * time.Second
	srv.Config.MaxHeaderBytes = hostileMaxHeaderBytes
	srv.Config.ErrorLog = log.New(h.errLog, "", 0)
	srv.Listener = gateway.StrictListener(srv.Listener) // as keywarden serve
	srv.Start()
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	h.Env = e
	h.root = t
	h.addr = srv.Listener.Addr().String()

	h.canaries = []*canary{
		startCanary(t, "127.0.0.2:80", "127.0.0.2:0"),
		startCanary(t, "127.0.0.1:6379", "127.0.0.1:0"),
	}
	h.metadata = startCanary(t, "127.0.0.3:80", "127.0.0.3:0")
	h.canaries = append(h.canaries, h.metadata)

	kit.SetPrice("BTCUSDT", 50000)
	kit.SetPrice("ETHUSDT", 10000)
	kit.SetPrice("NOPXUSDT", 0) // the ticker answers 0: no reference price
	h.key = e.AddKey("binance", "main", "read", "trade", "withdraw")
	acc, _ := kit.Account(h.key.APIKey)
	acc.IPs = []string{"127.0.0.1"}
	acc.Balances["XRP"] = 1000
	h.secrets = []string{Marker, h.key.Secret, hostilePassphrase}

	issue := func(name string, o client.IssueOptions) {
		if o.TTL == 0 {
			o.TTL = time.Hour
		}
		o.Key = "main"
		if o.Venue == "" {
			o.Venue = "binance"
		}
		iss, err := e.Clients.Issue(ctx, o)
		if err != nil {
			t.Fatalf("issue %s: %v", name, err)
		}
		h.creds[name] = iss
		h.secrets = append(h.secrets, string(iss.Secret))
	}
	issue("trader", client.IssueOptions{Policy: "trader"})
	issue("reader", client.IssueOptions{Policy: "reader"})
	issue("plain", client.IssueOptions{Policy: "plain"})
	issue("treasury", client.IssueOptions{Policy: "treasury"})
	issue("futures", client.IssueOptions{Venue: "binance-usdm", Policy: "futures"})
	issue("office", client.IssueOptions{Policy: "trader", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	issue("revoked", client.IssueOptions{Policy: "trader"})
	issue("expired", client.IssueOptions{Policy: "trader", TTL: time.Millisecond})
	if err := e.Clients.Revoke(ctx, "binance", h.creds["revoked"].ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let "expired" expire
	h.startAdmin(t, db, defs)
	return h
}

// rawReq is one HTTP/1.1 request as exact bytes.
type rawReq struct {
	method, target string
	host           string // "" means the gateway's address
	headers        []string
	body           string
	noLength       bool // send no Content-Length (the headers frame the body)
}

func (r rawReq) bytes(gw string) []byte {
	var b strings.Builder
	b.WriteString(r.method + " " + r.target + " HTTP/1.1\r\n")
	host := r.host
	if host == "" {
		host = gw
	}
	if host != "-" {
		b.WriteString("Host: " + host + "\r\n")
	}
	for _, h := range r.headers {
		b.WriteString(h + "\r\n")
	}
	if !r.noLength && (r.body != "" || r.method == http.MethodPost || r.method == http.MethodPut) {
		b.WriteString("Content-Length: " + strconv.Itoa(len(r.body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(r.body)
	return []byte(b.String())
}

// bot returns the request an exchange client holding cred would send for
// method venuePath?query with body: Binance's signature scheme over the
// exact query and body bytes, with the client credential.
func (h *hostileEnv) bot(cred, method, venuePath, query, body string, headers ...string) rawReq {
	h.t.Helper()
	iss := h.creds[cred]
	if iss == nil {
		h.t.Fatalf("no credential %q", cred)
	}
	return h.botWith(iss.ID, string(iss.Secret), method, venuePath, query, body, headers...)
}

func (h *hostileEnv) botWith(apiKey, secret, method, venuePath, query, body string, headers ...string) rawReq {
	h.t.Helper()
	r := &exchange.Request{Method: method, Path: venuePath, RawQuery: query, Body: []byte(body), Header: http.Header{}}
	if body == "" {
		r.Body = nil
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: apiKey, Secret: exchange.Secret(secret)}
	if err := binance.Spot(nil).Signer.Sign(r, cred, time.Now()); err != nil {
		h.t.Fatalf("sign: %v", err)
	}
	target := venuePath
	if r.RawQuery != "" {
		target += "?" + r.RawQuery
	}
	hs := []string{"X-MBX-APIKEY: " + apiKey}
	if len(r.Body) > 0 {
		hs = append(hs, "Content-Type: application/x-www-form-urlencoded")
	}
	return rawReq{method: method, target: target, headers: append(hs, headers...), body: string(r.Body)}
}

// hostileResult is what came back on the connection.
type hostileResult struct {
	status int
	header http.Header
	body   []byte
	raw    string // status line, headers and body as received
	closed bool   // the server closed the connection after answering
	err    error  // no response could be read
}

// send writes raw to a fresh connection and reads one response. When
// wantClose, it also waits briefly to see whether the server closes the
// connection.
func (h *hostileEnv) send(raw []byte, wantClose bool) hostileResult {
	conn, err := net.DialTimeout("tcp", h.addr, 2*time.Second)
	if err != nil {
		return hostileResult{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		return hostileResult{err: err}
	}
	return readResult(conn, wantClose)
}

func readResult(conn net.Conn, wantClose bool) hostileResult {
	var rec bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &rec))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return hostileResult{err: err, raw: rec.String(), closed: isClosed(err)}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	res := hostileResult{status: resp.StatusCode, header: resp.Header, body: body}
	if err != nil {
		res.err = err
	}
	if wantClose {
		_ = conn.SetReadDeadline(time.Now().Add(hostileReadHeaderTimeout))
		_, err := br.ReadByte()
		res.closed = isClosed(err)
	}
	res.raw = rec.String()
	return res
}

func isClosed(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// binanceError is Binance's error body.
type binanceError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// hostileCase is one hostile request and what keywarden must answer.
type hostileCase struct {
	name string
	// skip names a feature keywarden does not have yet.
	skip string
	// gaps are known departures from the spec, keyed by check (status,
	// code, forwarded, audit, close): that check is skipped with the
	// reason until the gateway is fixed.
	gaps map[string]string
	// setup prepares the case and returns what undoes it.
	setup func(t *testing.T, h *hostileEnv) func()
	// req builds the bytes to send; do replaces it for interactions that
	// are more than one write.
	req func(h *hostileEnv) rawReq
	do  func(t *testing.T, h *hostileEnv) hostileResult
	// statuses are the acceptable answers; 0 stands for "no answer, the
	// connection was closed".
	statuses []int
	// code is the Binance error code the body must carry (0: not checked)
	// and msg a substring its message must contain.
	code int
	msg  string
	// rules are the acceptable reason codes of the one denied audit record;
	// none means the gateway never sees the request (net/http refuses it),
	// so there is no record.
	rules []string
	// forwarded is how many requests the simulator must receive.
	forwarded int
	// close says the server must close the connection after answering.
	close bool
	// sameAs names an earlier case whose answer this one must equal.
	sameAs string
	// check runs extra assertions.
	check func(t *testing.T, h *hostileEnv, res hostileResult)
}

// Paths and bodies the cases use.
const (
	orderPath    = "/binance/api/v3/order"
	accountPath  = "/binance/api/v3/account"
	withdrawPath = "/binance/sapi/v1/capital/withdraw/apply"
	orderBody    = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=49000"
	withdrawBody = "coin=USDT&network=TRX&address=" + hostileTron + "&amount=10"
)

func qtyOrder(q string) string {
	return "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=" + q + "&price=49000"
}

func hostileCases() []hostileCase {
	order := func(cred string) func(h *hostileEnv) rawReq {
		return func(h *hostileEnv) rawReq { return h.bot(cred, "POST", orderPath, "", orderBody) }
	}
	post := func(cred, path, body string) func(h *hostileEnv) rawReq {
		return func(h *hostileEnv) rawReq { return h.bot(cred, "POST", path, "", body) }
	}
	// withTarget sends a trader's signed withdrawal to another request target.
	withTarget := func(target string) func(h *hostileEnv) rawReq {
		return func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", withdrawPath, "", withdrawBody)
			r.target = target
			return r
		}
	}
	// accountTo sends a trader's signed account read to another target.
	accountTo := func(target string) func(h *hostileEnv) rawReq {
		return func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", accountPath, "", "")
			r.target = target + r.target[len(accountPath):]
			return r
		}
	}
	qty := func(q string) func(h *hostileEnv) rawReq {
		return func(h *hostileEnv) rawReq { return h.bot("trader", "POST", orderPath, "", qtyOrder(q)) }
	}
	withdraw := func(body string) func(h *hostileEnv) rawReq { return post("treasury", withdrawPath, body) }
	badReq := []string{"bad_request"}
	unauthorized := []int{http.StatusUnauthorized}
	badStatus := []int{http.StatusBadRequest}
	unaudited := []string(nil)
	return []hostileCase{
		// Controls: well-formed requests go through, so every refusal below
		// is due to its hostile part.
		{name: "control/signed read", req: func(h *hostileEnv) rawReq { return h.bot("trader", "GET", accountPath, "", "") },
			statuses: []int{http.StatusOK}, forwarded: 1},
		{name: "control/signed order", req: order("trader"), statuses: []int{http.StatusOK}, forwarded: 1},

		{name: "A1/no credential", req: func(h *hostileEnv) rawReq {
			return rawReq{method: "POST", target: orderPath, body: orderBody, headers: []string{"Content-Type: application/x-www-form-urlencoded"}}
		}, statuses: unauthorized, rules: []string{"auth"}},
		{name: "A1/signature without key", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers = r.headers[1:] // drop X-MBX-APIKEY
			return r
		}, statuses: unauthorized, code: -2014, rules: []string{"auth"}},
		{name: "A2/bad prefix", req: func(h *hostileEnv) rawReq {
			return h.botWith("zz"+randHex(24), randHex(32), "POST", orderPath, "", orderBody)
		}, statuses: unauthorized, code: -2015, rules: []string{"auth"}},
		{name: "A2/malformed key", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers[0] = "X-MBX-APIKEY: kw " + randHex(4)
			return r
		}, statuses: unauthorized, code: -2014, rules: []string{"auth"}},
		{name: "A3/unknown id", req: func(h *hostileEnv) rawReq {
			return h.botWith("kw"+randHex(24), randHex(32), "POST", orderPath, "", orderBody)
		}, statuses: unauthorized, code: -2015, rules: []string{"auth"}},
		{name: "A3/exchange API key as client id", req: func(h *hostileEnv) rawReq {
			return h.botWith(h.key.APIKey, h.key.Secret, "POST", orderPath, "", orderBody)
		}, statuses: unauthorized, code: -2015, rules: []string{"auth"}, sameAs: "A3/unknown id"},
		{name: "A4/wrong secret", req: func(h *hostileEnv) rawReq {
			return h.botWith(h.creds["trader"].ID, randHex(32), "POST", orderPath, "", orderBody)
		}, statuses: unauthorized, code: -2015, rules: []string{"auth"}, sameAs: "A3/unknown id"},
		{name: "A5/revoked", req: order("revoked"), statuses: unauthorized, code: -2015, rules: []string{"auth"}},
		{name: "A5/expired", req: order("expired"), statuses: unauthorized, code: -2015, rules: []string{"auth"}},
		{name: "A6/peer not allowlisted", req: order("office"), statuses: unauthorized, code: -2015, rules: []string{"source_ip"}},
		{name: "A7/X-Forwarded-For from a bad peer", req: func(h *hostileEnv) rawReq {
			return h.bot("office", "POST", orderPath, "", orderBody, "X-Forwarded-For: 10.1.2.3", "X-Real-IP: 10.1.2.3", "Forwarded: for=10.1.2.3")
		}, statuses: unauthorized, code: -2015, rules: []string{"source_ip"},
			check: func(t *testing.T, h *hostileEnv, res hostileResult) {
				recs := h.newRecords()
				if len(recs) == 1 && recs[0].Intent != nil && recs[0].Intent.SourceIP != "127.0.0.1" {
					t.Errorf("audit source_ip = %q, want the TCP peer 127.0.0.1", recs[0].Intent.SourceIP)
				}
			}},
		{name: "A8/read credential places an order", req: order("reader"), statuses: unauthorized, code: -1002, msg: "rule scope", rules: []string{"scope"}},
		{name: "A9/trade credential withdraws", req: post("trader", withdrawPath, withdrawBody), statuses: unauthorized, code: -1002, msg: "rule scope", rules: []string{"scope"}},
		{name: "A10/trailing slash", req: withTarget(withdrawPath + "/"), statuses: badStatus, rules: badReq},
		{name: "A10/upper case", req: withTarget("/binance/SAPI/V1/CAPITAL/WITHDRAW/APPLY"), statuses: unauthorized, code: -1002, msg: "rule scope", rules: []string{"scope"}},
		{name: "A10/encoded slash", req: withTarget("/binance/sapi/v1/capital%2Fwithdraw/apply"), statuses: badStatus, rules: badReq},
		{name: "A10/dot segment", req: withTarget("/binance/sapi/v1/./capital/withdraw/apply"), statuses: badStatus, rules: badReq},
		{name: "A10/double slash", req: withTarget("/binance/sapi/v1//capital/withdraw/apply"), statuses: badStatus, rules: badReq},
		{name: "A10/semicolon", req: withTarget(withdrawPath + ";x"), statuses: badStatus, rules: badReq},
		{name: "A11/dot-dot to another venue", req: accountTo("/binance/../binance-usdm/fapi/v2/account"), statuses: badStatus, rules: badReq},
		{name: "A11/encoded dot-dot", req: accountTo("/binance/api/%2e%2e%2fv3/account"), statuses: badStatus, rules: badReq},
		{name: "A11/double-encoded dot", req: accountTo("/binance/api/%252e%252e/v3/account"), statuses: badStatus, rules: badReq},
		{name: "A11/backslash", req: accountTo(`/binance/api\v3\account`), statuses: badStatus, rules: badReq},
		{name: "A11/at host", req: accountTo("/binance/api@evil.example/v3/account"), statuses: badStatus, rules: badReq},
		{name: "A12/absolute-form to the venue path", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", accountPath, "", "")
			r.target = "http://" + h.metadata.addr + r.target
			r.host = h.metadata.addr
			return r
		}, statuses: badStatus, rules: badReq},
		{name: "A12/absolute-form metadata address", req: func(h *hostileEnv) rawReq {
			return rawReq{method: "POST", target: "http://169.254.169.254/", host: "169.254.169.254"}
		}, statuses: badStatus, rules: badReq},
		{name: "A12/absolute-form canary", req: func(h *hostileEnv) rawReq {
			return rawReq{method: "GET", target: "http://" + h.canaries[0].addr + "/latest/meta-data/", host: h.canaries[0].addr}
		}, statuses: badStatus, rules: badReq},
		// A13: the Host header is ignored (the upstream comes from the
		// venue) or refused; only the simulator may be dialled.
		{name: "A13/Host evil.example", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", accountPath, "", "")
			r.host = "evil.example"
			return r
		}, statuses: []int{http.StatusOK}, forwarded: 1},
		{name: "A13/Host canary", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", accountPath, "", "")
			r.host = h.canaries[1].addr
			return r
		}, statuses: []int{http.StatusOK}, forwarded: 1},
		{name: "A14/CONNECT authority", req: func(h *hostileEnv) rawReq {
			return rawReq{method: "CONNECT", target: h.canaries[0].addr, host: h.canaries[0].addr}
		}, statuses: []int{http.StatusMethodNotAllowed}, rules: []string{"method"}},
		{name: "A14/CONNECT venue path", req: func(h *hostileEnv) rawReq {
			return rawReq{method: "CONNECT", target: accountPath}
		}, statuses: []int{http.StatusMethodNotAllowed}, rules: []string{"method"}},
		{name: "A15/TRACE", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", accountPath, "", "")
			r.method = "TRACE"
			return r
		}, statuses: []int{http.StatusMethodNotAllowed}, rules: []string{"method"}},
		{name: "A15/unlisted method", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.method = "PROPFIND"
			return r
		}, statuses: []int{http.StatusMethodNotAllowed}, rules: []string{"method"}},
		// A16: the body is a valid signed order in chunked coding: whichever
		// framing wins, it must not be forwarded.
		{name: "A16/Content-Length and chunked", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers = append(r.headers, "Content-Length: 4", "Transfer-Encoding: chunked")
			r.body = chunked(r.body)
			r.noLength = true
			return r
		}, statuses: badStatus, close: true, rules: badReq},
		// Chunked bodies are refused outright: venue clients send a
		// Content-Length, and chunked framing is where smuggling hides.
		{name: "A16/chunked order", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers = append(r.headers, "Transfer-Encoding: chunked")
			r.body = chunked(r.body)
			r.noLength = true
			return r
		}, statuses: badStatus, close: true, rules: badReq},
		{name: "A17/conflicting Content-Length", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers = append(r.headers, "Content-Length: "+strconv.Itoa(len(r.body)), "Content-Length: 5")
			r.noLength = true
			return r
		}, statuses: badStatus, close: true, rules: unaudited},
		{name: "A18/bare LF in chunk size", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers = append(r.headers, "Transfer-Encoding: chunked")
			r.body = fmt.Sprintf("%x\n%s\r\n0\r\n\r\n", len(r.body), r.body)
			r.noLength = true
			return r
		}, statuses: badStatus, rules: badReq},
		{name: "A19/CR in header value", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "X-Note: a\rInjected: 1")
		}, statuses: badStatus, rules: unaudited},
		// net/http unfolds obs-fold and takes a bare LF as a line end (RFC
		// 9112 allows a server to); a proxy in front may frame the same
		// bytes otherwise, so the strict listener refuses both on the wire.
		{name: "A19/obs-fold", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "X-Note: a", " folded: 1")
		}, statuses: badStatus, rules: unaudited},
		{name: "A19/obs-fold in Content-Length", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers = append(r.headers, "Content-Length:", " "+strconv.Itoa(len(r.body)))
			r.noLength = true
			return r
		}, statuses: badStatus, rules: unaudited},
		{name: "A19/bare LF line ends", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", accountPath, "", "")
			r.headers[0] += "\nX-Note: a"
			return r
		}, statuses: badStatus, rules: unaudited},
		{name: "A19/bare LF ends the head", do: func(t *testing.T, h *hostileEnv) hostileResult {
			b := h.bot("trader", "GET", accountPath, "", "").bytes(h.addr)
			return h.send(append(b[:len(b)-2], '\n'), false)
		}, statuses: badStatus, rules: unaudited},
		{name: "A19/NUL in header value", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "X-Note: a\x00b")
		}, statuses: badStatus, rules: unaudited},
		{name: "A20/encoded CRLF in path", req: accountTo("/binance/api/v3/account%0d%0aX-Injected:%201"), statuses: badStatus, rules: badReq},
		{name: "A20/encoded CRLF in query", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "omitZeroBalances=true%0d%0aX-Injected:%201", "")
		}, statuses: badStatus, rules: badReq},
		{name: "A20/encoded NUL in query", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "omitZeroBalances=true%00", "")
		}, statuses: badStatus, rules: badReq},
		{name: "A20/encoded NUL in path", req: accountTo("/binance/api/v3/account%00"), statuses: badStatus, rules: badReq},
		{name: "A20/raw NUL in path", req: accountTo("/binance/api/v3/acc\x00ount"), statuses: badStatus, rules: unaudited},
		{name: "A21/duplicate quantity", req: post("trader", orderPath, orderBody+"&quantity=1000"), statuses: badStatus, code: -1101, rules: badReq},
		{name: "A21/duplicate across query and body", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "POST", orderPath, "quantity=1000", orderBody)
		}, statuses: badStatus, code: -1101, rules: badReq},
		{name: "A21/duplicate in another case", req: post("trader", orderPath, orderBody+"&QUANTITY=1000"), statuses: badStatus, code: -1101, rules: badReq},
		{name: "A22/JSON duplicate keys", req: post("futures", "/binance-usdm/fapi/v1/batchOrders",
			"batchOrders="+url.QueryEscape(`[{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","timeInForce":"GTC","quantity":"0.01","quantity":"1000","price":"49000"}]`)),
			statuses: badStatus, rules: badReq},
		{name: "A23/timestamp in query and body", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.target += "?timestamp=" + strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
			return r
		}, statuses: badStatus, code: -1101, rules: badReq},
		{name: "A23/two signatures", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.target += "?signature=" + strings.Repeat("0", 64)
			return r
		}, statuses: []int{http.StatusBadRequest, http.StatusUnauthorized}, rules: []string{"bad_request", "auth"}},
		{name: "A23/two API-key headers", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "POST", orderPath, "", orderBody, "X-MBX-APIKEY: "+h.key.APIKey)
		}, statuses: unauthorized, code: -2014, rules: []string{"auth"}},
		{name: "A23/another venue's key header", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "OK-ACCESS-KEY: "+h.key.APIKey, "Authorization: Bearer "+h.key.APIKey)
		}, statuses: []int{http.StatusOK, http.StatusBadRequest}, forwarded: -1, rules: badReq,
			check: func(t *testing.T, h *hostileEnv, res hostileResult) {
				for _, l := range h.simLog() {
					for k := range l.Header {
						if strings.EqualFold(k, "Ok-Access-Key") || strings.EqualFold(k, "Authorization") {
							t.Errorf("the simulator received the bot's %s header", k)
						}
					}
				}
			}},
		{name: "A24/notional over the cap", req: post("trader", orderPath,
			"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.02&price=50000.01"),
			statuses: unauthorized, code: -1002, msg: "rule max_order_notional", rules: []string{"max_order_notional"}},
		{name: "A24/notional over the cap by 1e-14", req: post("trader", orderPath,
			"symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=10000.0000000000001"),
			statuses: unauthorized, code: -1002, msg: "rule max_order_notional", rules: []string{"max_order_notional"}},
		{name: "A24/control at the cap", req: post("trader", orderPath,
			"symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=10000"),
			statuses: []int{http.StatusOK}, forwarded: 1},
		{name: "A25/quantity 1e9", req: qty("1e9"), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity -1", req: qty("-1"), statuses: badStatus, code: -1100, rules: badReq},
		// With a notional cap the policy refuses an order it cannot value.
		{name: "A25/quantity 0", req: qty("0"), statuses: []int{http.StatusBadRequest, http.StatusUnauthorized},
			rules: []string{"bad_request", "max_order_notional"}},
		{name: "A25/quantity 0 without a cap", req: post("plain", orderPath, qtyOrder("0")), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity NaN", req: qty("NaN"), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity Inf", req: qty("Inf"), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity 0x10", req: qty("0x10"), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity 1_000", req: qty("1_000"), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity leading space", req: qty("%200.01"), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity full-width digits", req: qty(url.QueryEscape("０.０１")), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A25/quantity 40 digits", req: qty(strings.Repeat("1", 40)), statuses: badStatus, code: -1100, rules: badReq},
		{name: "A26/market order without a reference price", req: post("trader", orderPath,
			"symbol=NOPXUSDT&side=BUY&type=MARKET&quantity=1"),
			statuses: unauthorized, code: -1002, msg: "rule reference_price", rules: []string{"reference_price"}},
		{name: "A27/limit price outside the band", req: post("trader", orderPath,
			"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=60000"),
			statuses: unauthorized, code: -1002, msg: "rule price_band", rules: []string{"price_band"}},
		{name: "A28/symbol not allowlisted", req: post("trader", orderPath,
			"symbol=SOLUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=150"),
			statuses: unauthorized, code: -1002, msg: "rule symbol", rules: []string{"symbol"}},
		{name: "A28/homoglyph symbol", req: post("trader", orderPath,
			"symbol=BTCUSD%D0%A2&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=49000"),
			statuses: []int{http.StatusBadRequest, http.StatusUnauthorized}, rules: []string{"bad_request", "symbol"}},
		{name: "A29/unlisted address", req: withdraw("coin=USDT&network=TRX&address=TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE&amount=10"),
			statuses: unauthorized, code: -1002, msg: "rule withdraw_address", rules: []string{"withdraw_address"}},
		{name: "A29/case variant", req: withdraw("coin=USDT&network=TRX&address=" + strings.Replace(hostileTron, "XYZ", "XyZ", 1) + "&amount=10"),
			statuses: unauthorized, code: -1002, msg: "rule withdraw_address", rules: []string{"withdraw_address"}},
		{name: "A29/memo variant", req: withdraw("coin=XRP&network=XRP&address=" + hostileXRP + "&addressTag=54321&amount=10"),
			statuses: unauthorized, code: -1002, msg: "rule withdraw_address", rules: []string{"withdraw_address"}},
		{name: "A29/control listed address", req: withdraw(withdrawBody), statuses: []int{http.StatusOK}, forwarded: 1},
		// A30 and A37 are in adminCases.
		{name: "A31/repeated client order id", do: func(t *testing.T, h *hostileEnv) hostileResult {
			body := orderBody + "&newClientOrderId=hostile-a31"
			if first := h.send(h.bot("trader", "POST", orderPath, "", body).bytes(h.addr), false); first.status != http.StatusOK {
				t.Fatalf("control: the first order = %d %q, want 200", first.status, trim(first.body))
			}
			// The same order signed again (a bot's retry): a new
			// signature and timestamp, so only the client order id
			// tells it is the same order.
			return h.send(h.bot("trader", "POST", orderPath, "", body).bytes(h.addr), false)
		}, statuses: []int{http.StatusConflict}, code: -1002, msg: "rule duplicate_client_order_id", forwarded: -1,
			check: func(t *testing.T, h *hostileEnv, res hostileResult) {
				if got := len(h.simLog()) - h.simMark; got != 1 {
					t.Errorf("simulator received %d orders, want 1", got)
				}
				var rules []string
				for _, r := range h.newRecords() {
					if r.Type == audit.TypeDenied && r.Intent != nil {
						rules = append(rules, r.Intent.Rule)
					}
				}
				if !slices.Equal(rules, []string{gateway.RuleDuplicateOrder}) {
					t.Errorf("denials %v, want one with rule %s", rules, gateway.RuleDuplicateOrder)
				}
			}},
		{name: "A32/body over 64 KiB", req: post("trader", orderPath, orderBody+"&newClientOrderId="+strings.Repeat("a", 65<<10)),
			statuses: []int{http.StatusRequestEntityTooLarge}, rules: badReq},
		{name: "A32/headers over 16 KiB", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "X-Pad: "+strings.Repeat("a", 17<<10))
		}, statuses: []int{http.StatusRequestHeaderFieldsTooLarge}, rules: unaudited},
		{name: "A32/headers over 20 KiB", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "X-Pad: "+strings.Repeat("a", 21<<10))
		}, statuses: []int{http.StatusRequestHeaderFieldsTooLarge}, rules: unaudited},
		{name: "A32/URI over 8 KiB", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "omitZeroBalances=true&pad="+strings.Repeat("a", 9<<10), "")
		}, statuses: []int{http.StatusRequestURITooLong}, rules: badReq},
		{name: "A33/slowloris headers", do: func(t *testing.T, h *hostileEnv) hostileResult {
			conn, err := net.DialTimeout("tcp", h.addr, 2*time.Second)
			if err != nil {
				return hostileResult{err: err}
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(8 * hostileReadHeaderTimeout))
			if _, err := io.WriteString(conn, "GET "+accountPath+" HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
				return hostileResult{err: err}
			}
			for range 3 { // trickle, bounded: the server must hang up first
				time.Sleep(hostileReadHeaderTimeout / 2)
				if _, err := io.WriteString(conn, "a"); err != nil {
					break
				}
			}
			return readResult(conn, false)
		}, statuses: []int{0, http.StatusRequestTimeout}, rules: unaudited},
		{name: "A33/slow body", do: func(t *testing.T, h *hostileEnv) hostileResult {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.noLength = true
			r.headers = append(r.headers, "Content-Length: "+strconv.Itoa(len(r.body)))
			full := r.bytes(h.addr)
			conn, err := net.DialTimeout("tcp", h.addr, 2*time.Second)
			if err != nil {
				return hostileResult{err: err}
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(4 * hostileReadTimeout))
			if _, err := conn.Write(full[:len(full)-len(r.body)+10]); err != nil {
				return hostileResult{err: err}
			}
			return readResult(conn, false) // the rest of the body never comes
		}, statuses: []int{http.StatusRequestTimeout}, rules: badReq},
		{name: "A34/JSON Content-Type", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody)
			r.headers[1] = "Content-Type: application/json"
			return r
		}, statuses: badStatus, code: -1100, rules: badReq}, // Binance's own answer, not 415
		{name: "A34/gzip bomb", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "POST", orderPath, "", orderBody, "Content-Encoding: gzip")
			r.body = gzipBomb(10 << 20)
			return r
		}, statuses: []int{http.StatusUnsupportedMediaType}, rules: badReq},
		{name: "A35/invalid UTF-8 in path", req: accountTo("/binance/api/v3/acc\xffount"), statuses: badStatus, rules: badReq},
		{name: "A35/overlong UTF-8 in path", req: accountTo("/binance/api/v3/%c0%afaccount"), statuses: badStatus, rules: badReq},
		{name: "A35/raw overlong UTF-8 in path", req: accountTo("/binance/api/v3/\xc0\xafaccount"), statuses: badStatus, rules: badReq},
		// A36: served; the audit files stay one JSON object per line (checked
		// by H1 below). A raw ESC in a header is refused by net/http.
		{name: "A36/log injection in User-Agent", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", `User-Agent: bot\n{"fake":1}`)
		}, statuses: []int{http.StatusOK}, forwarded: 1},
		{name: "A36/ANSI escape in User-Agent", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "User-Agent: bot\x1b[31mred\x1b[0m")
		}, statuses: badStatus, rules: unaudited},
		{name: "A36/log injection in a parameter", req: post("trader", orderPath,
			orderBody+"&newClientOrderId="+url.QueryEscape("x\n{\"fake\":1}\x1b[31m")),
			statuses: []int{http.StatusOK}, forwarded: 1},
		{name: "A38/panic switch", setup: func(t *testing.T, h *hostileEnv) func() {
			h.Server.Gateway.Stop()
			return h.Server.Gateway.Resume
		}, req: order("trader"), statuses: []int{http.StatusServiceUnavailable}, code: -1008, rules: []string{"unavailable"}},
		{name: "A38/sealed vault", setup: func(t *testing.T, h *hostileEnv) func() {
			h.Vault.Seal()
			return func() {
				if err := h.Vault.Unseal(context.Background(), []byte(hostilePassphrase)); err != nil {
					t.Fatalf("unseal: %v", err)
				}
			}
		}, req: order("trader"), statuses: []int{http.StatusServiceUnavailable}, code: -1008, rules: []string{"unavailable"}},
		{name: "A39/Upgrade h2c", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA")
		}, statuses: badStatus, rules: badReq},
		{name: "A39/Upgrade websocket", req: func(h *hostileEnv) rawReq {
			return h.bot("trader", "GET", accountPath, "", "", "Connection: Upgrade", "Upgrade: websocket",
				"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
		}, statuses: badStatus, rules: badReq},
		{name: "A39/HTTP/2 prior knowledge", do: func(t *testing.T, h *hostileEnv) hostileResult {
			return h.send([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), false)
		}, statuses: []int{0, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusHTTPVersionNotSupported},
			rules: []string{"not_found", "bad_request", "method"}},
		{name: "A40/unknown exchange", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", accountPath, "", "")
			r.target = "/nosuchvenue" + r.target[len("/binance"):]
			return r
		}, statuses: []int{http.StatusNotFound}, rules: []string{"not_found"}},
	}
}

// chunked encodes body as one chunk.
func chunked(body string) string {
	return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
}

// gzipBomb returns n zero bytes, gzipped.
func gzipBomb(n int) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(make([]byte, n))
	_ = zw.Close()
	return b.String()
}

// hostileGap reports whether check has a known gap in the running case, and
// then shows it as a skipped subtest instead of running the check.
func hostileGap(t *testing.T, check, reason string) bool {
	t.Helper()
	if reason == "" || os.Getenv("KEYWARDEN_HOSTILE_NOGAP") != "" {
		return false
	}
	t.Run("gap/"+check, func(t *testing.T) { t.Skip("known gap: " + reason) })
	return true
}

// simLog returns what the simulator received, without keywarden's own
// public price lookups.
func (h *hostileEnv) simLog() []sim.Logged {
	var out []sim.Logged
	for _, l := range h.Sims["binance"].Kit.Log() {
		if !strings.HasSuffix(l.Path, "/ticker/price") {
			out = append(out, l)
		}
	}
	return out
}

// requestRecords returns the audit records about requests.
func (h *hostileEnv) requestRecords() []audit.Record {
	var out []audit.Record
	for _, r := range h.Records() {
		switch r.Type {
		case audit.TypeIntent, audit.TypeDenied, audit.TypeOutcome:
			out = append(out, r)
		}
	}
	return out
}

// mark remembers the state before a case; newRecords reports what the case
// added.
func (h *hostileEnv) mark() { h.recMark, h.simMark = len(h.requestRecords()), len(h.simLog()) }

func (h *hostileEnv) newRecords() []audit.Record { return h.requestRecords()[h.recMark:] }

func (h *hostileEnv) strayDials() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, d := range h.dials {
		if d != h.simAddr {
			out = append(out, d)
		}
	}
	return out
}

// TestHostileRequests runs the A-series battery against one keywarden, then
// scans everything it wrote for secrets (H-series).
func TestHostileRequests(t *testing.T) {
	h := newHostileEnv(t)
	for _, tt := range append(hostileCases(), adminCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			h.t = t
			defer func() { h.t = h.root }()
			h.mark()
			if tt.setup != nil {
				defer tt.setup(t, h)()
			}
			var res hostileResult
			if tt.do != nil {
				res = tt.do(t, h)
			} else {
				res = h.send(tt.req(h).bytes(h.addr), tt.close)
			}
			h.seen[tt.name] = res
			h.judge(t, tt, res)
		})
	}
	t.Run("H8/credentials carry at least 128 random bits", func(t *testing.T) {
		seen := map[string]bool{}
		for name, iss := range h.creds {
			for _, v := range []string{iss.ID, string(iss.Secret)} {
				if bits := alnumBits(v); bits < 128 {
					t.Errorf("credential %s: a %d-character value carries at most %d bits, want at least 128", name, len(v), bits)
				}
				if seen[v] {
					t.Errorf("credential %s repeats a value issued before", name)
				}
				seen[v] = true
			}
		}
	})
	t.Run("H1/no secret in logs, observations, audit or environment", func(t *testing.T) { h.hygiene(t) })
}

// judge applies the default pass rule to one answer.
func (h *hostileEnv) judge(t *testing.T, tt hostileCase, res hostileResult) {
	gap := func(check string) bool { return hostileGap(t, check, tt.gaps[check]) }
	t.Logf("answer: %d %q", res.status, trim(res.body))
	// The gateway records the outcome after answering; wait for the
	// request to finish before reading the audit log.
	h.Server.Gateway.Wait()
	if res.err != nil && res.status != 0 {
		t.Logf("reading the answer: %v", res.err)
	}
	if !gap("status") && !slices.Contains(tt.statuses, res.status) {
		t.Errorf("status = %d (%v) %q, want one of %v", res.status, res.err, trim(res.body), tt.statuses)
	}
	if tt.code != 0 || tt.msg != "" {
		var be binanceError
		err := json.Unmarshal(res.body, &be)
		if tt.code != 0 && !gap("code") && (err != nil || be.Code != tt.code) {
			t.Errorf("body = %q, want Binance error code %d", trim(res.body), tt.code)
		}
		if tt.msg != "" && !gap("msg") && !strings.Contains(be.Msg, tt.msg) {
			t.Errorf("error message = %q, want it to contain %q", be.Msg, tt.msg)
		}
	}
	if tt.close && !gap("close") && !res.closed {
		t.Errorf("connection left open after the answer, want it closed")
	}
	if got := len(h.simLog()) - h.simMark; tt.forwarded >= 0 && got != tt.forwarded && !gap("forwarded") {
		t.Errorf("simulator received %d requests, want %d", got, tt.forwarded)
	}
	if d := h.strayDials(); len(d) > 0 {
		t.Errorf("keywarden dialled %v, want only the simulator %s", d, h.simAddr)
	}
	for _, c := range h.canaries {
		if n := c.n.Load(); n > 0 {
			t.Errorf("canary %s received %d connections", c.addr, n)
		}
	}
	h.judgeAudit(t, tt, gap)
	for _, s := range append(h.secrets, h.key.APIKey) {
		if strings.Contains(res.raw, s) {
			t.Errorf("the answer contains a secret or the exchange API key (%d bytes)", len(s))
		}
	}
	if other, ok := h.seen[tt.sameAs]; ok && !gap("same") && (res.status != other.status || string(res.body) != string(other.body)) {
		t.Errorf("answer = %d %q, want the same as %s: %d %q", res.status, trim(res.body), tt.sameAs, other.status, trim(other.body))
	}
	if tt.check != nil && !gap("check") {
		tt.check(t, h, res)
	}
}

// judgeAudit checks the audit records a case left: one denied record with a
// reason code for a refusal, an intent and an outcome per forwarded call,
// nothing when net/http refused the request.
func (h *hostileEnv) judgeAudit(t *testing.T, tt hostileCase, gap func(string) bool) {
	recs := h.newRecords()
	var denied, allowed, outcomes int
	var rules []string
	for _, r := range recs {
		switch {
		case r.Type == audit.TypeDenied && r.Intent != nil:
			denied++
			rules = append(rules, r.Intent.Rule)
		case r.Type == audit.TypeIntent:
			allowed++
		case r.Type == audit.TypeOutcome:
			outcomes++
		}
	}
	if tt.forwarded != 0 {
		fwd := len(h.simLog()) - h.simMark
		if allowed != fwd || outcomes != fwd || denied+allowed != 1 && tt.forwarded > 0 {
			if !gap("audit") {
				t.Errorf("audit: %d allowed intents, %d outcomes, %d denials (%v) for %d forwarded calls, want an intent and an outcome per forwarded call",
					allowed, outcomes, denied, rules, fwd)
			}
		}
		return
	}
	if gap("audit") {
		return
	}
	if len(tt.rules) == 0 {
		if len(recs) != 0 {
			t.Errorf("audit: %d records (%v), want none: net/http refuses this before the gateway", len(recs), rules)
		}
		return
	}
	if denied != 1 || len(recs) != 1 || !slices.Contains(tt.rules, rules[0]) {
		t.Errorf("audit: %d records, denials with rules %v, want exactly one denial with a rule in %v", len(recs), rules, tt.rules)
	}
}

// alnumBits bounds the entropy of a random string over [A-Za-z0-9]: about
// 5.95 bits a character; 0 if it holds anything else.
func alnumBits(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return 0
		}
	}
	return len(s) * 595 / 100
}

func trim(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// hygiene is H1 on the gateway path: after the battery, no secret appears
// in the debug log, the server's error log, the monitoring observations,
// the audit files (which must also be one JSON object per line, A36) or the
// process environment; and nothing panicked.
func (h *hostileEnv) hygiene(t *testing.T) {
	h.mu.Lock()
	obs := fmt.Sprintf("%+v", h.obs)
	h.mu.Unlock()
	env, _ := os.ReadFile("/proc/self/environ")
	outputs := map[string]string{
		"debug log":    h.logs.String(),
		"error log":    h.errLog.String(),
		"observations": obs,
		"environment":  string(env),
	}
	if !strings.Contains(outputs["debug log"], `"level":"DEBUG"`) && !strings.Contains(outputs["debug log"], `"level":"INFO"`) {
		t.Errorf("debug log is empty; the scan would prove nothing")
	}
	files, err := os.ReadDir(h.AuditDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(h.AuditDir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		outputs["audit file "+f.Name()] = string(b)
		if !strings.HasSuffix(f.Name(), ".jsonl") {
			continue
		}
		// Segments are pre-allocated with zeros: the records end at the
		// first NUL.
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("audit file %s line %d is not one JSON object: %v", f.Name(), i+1, err)
			}
			if strings.ContainsAny(line, "\x1b\r") {
				t.Errorf("audit file %s line %d holds a raw control character", f.Name(), i+1)
			}
		}
	}
	for what, s := range outputs {
		for _, sec := range h.secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s contains a secret (%d bytes)", what, len(sec))
			}
		}
	}
	if strings.Contains(outputs["error log"], "panic") {
		t.Errorf("the server logged a panic:\n%s", outputs["error log"])
	}
	if _, err := audit.Verify(h.AuditDir, h.AuditPub); err != nil {
		t.Errorf("audit verify: %v", err)
	}
}
