package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/store"
)

// The hostile battery's admin side (A30, A37): the admin API served on its
// own TLS listener, as `keywarden serve` does, over the same store, vault,
// clients, gateway and audit log as the gateway under test. Operators log
// in with a password and a TOTP code; the TOTP clock is a manual one so a
// test can take a fresh code (the next 30-second step) or replay one.

const hostileOperatorPassword = "operator password " + Marker

// hostileAdmin is the admin API of a hostileEnv.
type hostileAdmin struct {
	srv     *httptest.Server
	overlay *policy.Overlay
	seeds   map[string][]byte
	tokens  map[string]string // operator -> session token

	mu  sync.Mutex
	now time.Time // the operators' clock
}

func (a *hostileAdmin) clock() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now
}

// code returns name's TOTP code for the next time step.
func (a *hostileAdmin) code(name string) string {
	a.mu.Lock()
	a.now = a.now.Add(30 * time.Second)
	t := a.now
	a.mu.Unlock()
	return operator.Code(a.seeds[name], t)
}

// startAdmin serves the admin API for h with a security officer and an
// auditor (the viewer role), both logged in.
func (h *hostileEnv) startAdmin(t *testing.T, st store.Store, defs map[string]policy.Definition) {
	t.Helper()
	ctx := context.Background()
	a := &hostileAdmin{seeds: map[string][]byte{}, tokens: map[string]string{}, now: time.Now()}
	ops, err := operator.New(operator.Options{Store: st, Secrets: h.Vault, Now: a.clock, KDF: operator.MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	a.overlay = policy.NewOverlay(st, defs, nil)
	handler := admin.New(admin.Options{
		Operators: ops, Keys: h.Vault, Clients: h.Server.Clients, Gateway: h.Server.Gateway, Audit: h.Server.Audit,
		AuditDir: h.AuditDir, Policies: a.overlay, SetPolicies: h.Server.SetPolicies, AuditKey: h.AuditPub, Now: a.clock,
	})
	a.srv = httptest.NewUnstartedServer(handler)
	a.srv.Config.ReadHeaderTimeout = hostileReadHeaderTimeout
	a.srv.Config.ErrorLog = log.New(h.errLog, "", 0)
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	h.admin = a
	for name, role := range map[string]operator.Role{"security": operator.RoleSecurity, "viewer": operator.RoleAuditor} {
		_, enr, err := ops.Create(ctx, operator.CreateOptions{Name: name, Role: role, Password: []byte(hostileOperatorPassword)})
		if err != nil {
			t.Fatal(err)
		}
		a.seeds[name] = enr.Seed
		res := h.adminDo("POST", "/v1/auth/login", "", map[string]string{"name": name, "password": hostileOperatorPassword, "code": a.code(name)})
		var out struct {
			Token string `json:"token"`
		}
		if res.status != http.StatusOK || json.Unmarshal(res.body, &out) != nil || out.Token == "" {
			t.Fatalf("login %s = %d %s", name, res.status, res.body)
		}
		a.tokens[name] = out.Token
		h.secrets = append(h.secrets, out.Token)
	}
	h.secrets = append(h.secrets, hostileOperatorPassword)
}

// adminDo sends one admin API request; hdr are header name, value pairs.
func (h *hostileEnv) adminDo(method, path, token string, body any, hdr ...string) hostileResult {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.admin.srv.URL+path, rd)
	if err != nil {
		return hostileResult{err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := h.admin.srv.Client().Do(req)
	if err != nil {
		return hostileResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return hostileResult{status: resp.StatusCode, header: resp.Header, body: b, raw: string(b), err: err}
}

// treasuryWith is the treasury policy's text with extra withdrawal
// addresses (USDT on TRX) besides its two listed ones.
func treasuryWith(extra ...string) map[string]string {
	var b strings.Builder
	b.WriteString("[policy.treasury]\nscopes = [\"read\", \"withdraw\"]\n")
	addr := func(asset, network, address, memo string) {
		b.WriteString("[[policy.treasury.withdraw.addresses]]\nasset = \"" + asset + "\"\nnetwork = \"" + network +
			"\"\naddress = \"" + address + "\"\n")
		if memo != "" {
			b.WriteString("memo = \"" + memo + "\"\n")
		}
		b.WriteString("added_at = 2020-01-01T00:00:00Z\n")
	}
	addr("USDT", "TRX", hostileTron, "")
	addr("XRP", "XRP", hostileXRP, "12345")
	for _, a := range extra {
		addr("USDT", "TRX", a, "")
	}
	return map[string]string{"toml": b.String()}
}

// treasuryHas reports whether the treasury policy in force lists address.
func (h *hostileEnv) treasuryHas(t *testing.T, address string) bool {
	t.Helper()
	defs, err := h.admin.overlay.Definitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range defs["treasury"].Withdraw.Addresses {
		if a.Address == address {
			return true
		}
	}
	return false
}

// Addresses the A30 cases try to add.
const (
	hostileNewTron    = "TNewAddress111111111111111111111111"
	hostileReplayTron = "TReplayAddress11111111111111111111"
)

// adminCases are A30 and A37; they run after the gateway cases.
func adminCases() []hostileCase {
	forbidden := []int{http.StatusForbidden}
	unchanged := func(addr string) func(t *testing.T, h *hostileEnv, res hostileResult) {
		return func(t *testing.T, h *hostileEnv, res hostileResult) {
			if h.treasuryHas(t, addr) {
				t.Errorf("the treasury policy lists %s after a refused change", addr)
			}
		}
	}
	return []hostileCase{
		{name: "A30/allowlist change without TOTP", do: func(t *testing.T, h *hostileEnv) hostileResult {
			return h.adminDo("PUT", "/v1/policies/treasury", h.admin.tokens["security"], treasuryWith(hostileNewTron))
		}, statuses: forbidden, check: unchanged(hostileNewTron)},
		{name: "A30/allowlist change with a wrong TOTP", do: func(t *testing.T, h *hostileEnv) hostileResult {
			code := h.admin.code("security")
			wrong := string(rune('0'+(code[0]-'0'+1)%10)) + code[1:]
			return h.adminDo("PUT", "/v1/policies/treasury", h.admin.tokens["security"], treasuryWith(hostileNewTron), admin.TOTPHeader, wrong)
		}, statuses: forbidden, check: unchanged(hostileNewTron)},
		{name: "A30/allowlist change with a replayed TOTP", do: func(t *testing.T, h *hostileEnv) hostileResult {
			// Control: a fresh code adds the address, and the gateway
			// uses the edited policy at once.
			code := h.admin.code("security")
			tok := h.admin.tokens["security"]
			if res := h.adminDo("PUT", "/v1/policies/treasury", tok, treasuryWith(hostileNewTron), admin.TOTPHeader, code); res.status != http.StatusOK {
				t.Fatalf("control: change with a fresh code = %d %s, want 200", res.status, res.body)
			}
			if !h.treasuryHas(t, hostileNewTron) {
				t.Fatalf("control: the address was not added")
			}
			return h.adminDo("PUT", "/v1/policies/treasury", tok, treasuryWith(hostileNewTron, hostileReplayTron), admin.TOTPHeader, code)
		}, statuses: forbidden, check: unchanged(hostileReplayTron)},
		{name: "A37/bot secret as an admin bearer token", do: func(t *testing.T, h *hostileEnv) hostileResult {
			return h.adminDo("GET", "/v1/keys", string(h.creds["trader"].Secret), nil)
		}, statuses: []int{http.StatusUnauthorized}},
		{name: "A37/bot id as an admin bearer token", do: func(t *testing.T, h *hostileEnv) hostileResult {
			return h.adminDo("GET", "/v1/clients", h.creds["trader"].ID, nil)
		}, statuses: []int{http.StatusUnauthorized}},
		{name: "A37/bot-signed request on an admin route", do: func(t *testing.T, h *hostileEnv) hostileResult {
			r := h.bot("trader", "POST", "/v1/keys/binance/main/rotate", "", "")
			return h.adminDo("POST", r.target, "", nil, strings.SplitN(r.headers[0], ": ", 2)...)
		}, statuses: []int{http.StatusUnauthorized}},
		{name: "A37/admin route on the gateway listener", req: func(h *hostileEnv) rawReq {
			r := h.bot("trader", "GET", "/v1/keys", "", "")
			return r
		}, statuses: []int{http.StatusNotFound}, rules: []string{"not_found"}},
		{name: "A37/viewer rotates an exchange key", do: func(t *testing.T, h *hostileEnv) hostileResult {
			return h.adminDo("POST", "/v1/keys/binance/main/rotate", h.admin.tokens["viewer"], map[string]any{},
				admin.TOTPHeader, h.admin.code("viewer"))
		}, statuses: forbidden},
		{name: "A37/viewer rotates a client credential", do: func(t *testing.T, h *hostileEnv) hostileResult {
			return h.adminDo("POST", "/v1/clients/binance/"+h.creds["trader"].ID+"/rotate", h.admin.tokens["viewer"], map[string]any{})
		}, statuses: forbidden, check: func(t *testing.T, h *hostileEnv, res hostileResult) {
			// The trader's credential still works: nothing was rotated.
			if got := h.send(h.bot("trader", "GET", accountPath, "", "").bytes(h.addr), false); got.status != http.StatusOK {
				t.Errorf("the trader's credential answers %d after the refused rotation, want 200", got.status)
			}
		}},
		{name: "A37/viewer stops the gateway", do: func(t *testing.T, h *hostileEnv) hostileResult {
			return h.adminDo("POST", "/v1/gateway/stop", h.admin.tokens["viewer"], nil)
		}, statuses: forbidden, check: func(t *testing.T, h *hostileEnv, res hostileResult) {
			if err := h.Server.Gateway.Healthy(); err != nil {
				t.Errorf("gateway after the viewer's refused stop: %v", err)
			}
		}},
	}
}
