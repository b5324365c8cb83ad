package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/keywarden/keywarden/internal/policy"
)

// listenKeyCall sends a USER_STREAM call (API key only, as Binance clients
// do) through the gateway and returns the status and the answer's
// listenKey.
func listenKeyCall(t *testing.T, env *Env, method, path, query, apiKey string) (int, string) {
	t.Helper()
	u := env.URL + path
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(method, u, nil)
	req.Header.Set("X-MBX-APIKEY", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lk struct {
		ListenKey string `json:"listenKey"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&lk)
	return resp.StatusCode, lk.ListenKey
}

// dialStatus dials url and returns the HTTP status of a refused handshake
// (0 when the socket opened; it is closed again).
func dialStatus(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		c.CloseNow()
		return 0
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

// waitClose reads c until it ends, within a bounded deadline, and returns
// the close code.
func waitClose(t *testing.T, c *websocket.Conn, within time.Duration) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// TestWSListenKeyBoundToCredential: a user-data stream opens only for a
// listen key created through the gateway by a valid credential; keep-alive
// and close work through the gateway; revoking the credential closes its
// open stream with 1008 within the proxy's check loop and closes the
// listen key at the venue, so the bot cannot use it directly either; the
// listen key appears in no audit record, only its keyed HMAC.
func TestWSListenKeyBoundToCredential(t *testing.T) {
	env := NewEnv(t, []string{"binance", "binance-usdm"}, map[string]policy.Definition{
		"reader": {Scopes: []string{"read"}},
	})
	env.AddKey("binance", "main", "read")
	iss := env.Issue("binance", "main", "reader")
	other := env.Issue("binance", "main", "reader")
	kit := env.Sims["binance"].Kit
	simWS := "ws" + strings.TrimPrefix(env.Sims["binance"].URL, "http")
	gwWS := "ws" + strings.TrimPrefix(env.URL, "http")

	// A listen key keywarden did not issue is refused before anything is
	// dialled, however it is named.
	forged := strings.Repeat("Ab1", 20)
	for _, p := range []string{"/binance/ws/" + forged, "/binance/ws/btcusdt@trade/" + forged, "/binance/stream?streams=btcusdt@trade/" + forged} {
		if st := dialStatus(t, gwWS+p); st != http.StatusForbidden {
			t.Errorf("stream %s with an unknown listen key: status %d, want 403", strings.ReplaceAll(p, forged, "<forged>"), st)
		}
	}

	st, lk := listenKeyCall(t, env, "POST", "/binance/api/v3/userDataStream", "", iss.ID)
	if st != 200 || len(lk) < 60 {
		t.Fatalf("create listen key: %d, %d characters", st, len(lk))
	}
	// Market streams still need no credential; a listen key of this
	// exchange is not one of another venue's.
	if st := dialStatus(t, gwWS+"/binance-usdm/ws/"+lk); st != http.StatusForbidden {
		t.Errorf("spot listen key on the futures venue: status %d, want 403", st)
	}
	c := wsDial(t, env, "/binance/ws/"+lk)
	if m := wsRead(t, c); m["e"] != "outboundAccountPosition" {
		t.Fatalf("user data event %v", m)
	}
	combined := wsDial(t, env, "/binance/stream?streams=btcusdt@trade/"+lk)
	wsRead(t, combined)

	// Keep-alive through the gateway (listenKey in the query, as
	// python-binance sends it) reaches the venue and succeeds.
	if st, _ := listenKeyCall(t, env, "PUT", "/binance/api/v3/userDataStream", "listenKey="+lk, iss.ID); st != 200 {
		t.Errorf("keep-alive: %d, want 200", st)
	}
	// SUBSCRIBE on a market socket: a forged listen key is refused and not
	// forwarded; the issued one is accepted.
	market := wsDial(t, env, "/binance/ws/btcusdt@trade")
	m := wsSend(t, market, map[string]any{"method": "SUBSCRIBE", "params": []string{forged}, "id": 7})
	for range 1000 { // trade events may come first
		if m["id"] != nil {
			break
		}
		m = wsRead(t, market)
	}
	if m["error"] == nil || m["id"] != float64(7) {
		t.Errorf("SUBSCRIBE to a forged listen key answered %v, want an error", m)
	}
	sub, _ := json.Marshal(map[string]any{"method": "SUBSCRIBE", "params": []string{lk}, "id": 8})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := market.Write(ctx, websocket.MessageText, sub); err != nil {
		t.Fatal(err)
	}
	cancel()
	for deadline := time.Now().Add(5 * time.Second); ; {
		m := wsRead(t, market)
		if m["e"] == "outboundAccountPosition" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no user-data event after SUBSCRIBE with the issued listen key")
		}
	}
	for _, l := range kit.Log() {
		if strings.Contains(string(l.Body), forged) || strings.Contains(l.RawQuery, forged) {
			t.Errorf("the forged listen key reached the venue: %s %s", l.Method, l.Path)
		}
	}

	// Revoking the credential: every stream of its listen key closes with
	// 1008 within the check loop (waited for with a bounded deadline), and
	// keywarden closes the key at the venue.
	revokedAt := time.Now()
	if err := env.Clients.Revoke(context.Background(), "binance", iss.ID); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*websocket.Conn{"single": c, "combined": combined, "subscribed": market} {
		if code := waitClose(t, s, 15*time.Second); code != websocket.StatusPolicyViolation {
			t.Errorf("%s stream after revocation ended with %v, want 1008", name, code)
		}
	}
	// A figure for the docs, not a threshold: the proxy checks once a second.
	t.Logf("revocation to the last stream's 1008: %v", time.Since(revokedAt).Round(time.Millisecond))
	deleted := false
	for deadline := time.Now().Add(10 * time.Second); !deleted && time.Now().Before(deadline); {
		for _, l := range kit.Log() {
			if l.Method == "DELETE" && l.Path == "/api/v3/userDataStream" && strings.Contains(l.RawQuery, lk) && l.Verified {
				deleted = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !deleted {
		t.Error("keywarden did not close the listen key at the venue")
	}
	if st := dialStatus(t, simWS+"/ws/"+lk); st == 0 {
		t.Error("the listen key still opens a stream at the venue after revocation")
	}
	if st := dialStatus(t, gwWS+"/binance/ws/"+lk); st != http.StatusForbidden {
		t.Errorf("stream after revocation: status %d, want 403", st)
	}

	// Another credential of the same key makes a new listen key; closing
	// it through the gateway forgets it.
	st, lk2 := listenKeyCall(t, env, "POST", "/binance/api/v3/userDataStream", "", other.ID)
	if st != 200 || lk2 == lk {
		t.Fatalf("new listen key: %d (same as the revoked one: %v)", st, lk2 == lk)
	}
	c2 := wsDial(t, env, "/binance/ws/"+lk2)
	wsRead(t, c2)
	c2.Close(websocket.StatusNormalClosure, "")
	if st, _ := listenKeyCall(t, env, "DELETE", "/binance/api/v3/userDataStream", "listenKey="+lk2, other.ID); st != 200 {
		t.Errorf("close listen key: %d", st)
	}
	if st := dialStatus(t, gwWS+"/binance/ws/"+lk2); st != http.StatusForbidden {
		t.Errorf("stream of a closed listen key: status %d, want 403", st)
	}

	// No listen key in the audit log: only its keyed HMAC.
	recs := env.CheckAudit(lk, lk2, forged)
	tags, opened, refused := 0, 0, 0
	for _, r := range recs {
		if r.Intent == nil {
			continue
		}
		if strings.Contains(r.Intent.Path+r.Intent.Call.Path+r.Intent.Reason+r.Intent.Body, "lk-hmac:") {
			tags++
		}
		if r.Intent.Method == "WS" && strings.HasPrefix(r.Intent.Path, "/binance") {
			if r.Intent.Decision == "allow" {
				opened++
			} else {
				refused++
			}
		}
	}
	if tags == 0 || opened < 4 || refused < 5 {
		t.Errorf("audit: %d records with a listen-key tag, %d streams opened, %d refused; want tags, ≥4 and ≥5", tags, opened, refused)
	}
}

// TestWSListenKeyFutures: a USD-M listen key (keep-alive without a
// listenKey parameter, as at Binance) streams through binance-usdm only.
func TestWSListenKeyFutures(t *testing.T) {
	env := NewEnv(t, []string{"binance", "binance-usdm"}, map[string]policy.Definition{
		"reader": {Scopes: []string{"read"}},
	})
	env.AddKey("binance", "main", "read")
	iss := env.Issue("binance-usdm", "main", "reader")
	st, lk := listenKeyCall(t, env, "POST", "/binance-usdm/fapi/v1/listenKey", "", iss.ID)
	if st != 200 || lk == "" {
		t.Fatalf("create: %d", st)
	}
	if st, again := listenKeyCall(t, env, "PUT", "/binance-usdm/fapi/v1/listenKey", "", iss.ID); st != 200 || again != lk {
		t.Errorf("keep-alive: %d, same key %v", st, again == lk)
	}
	// Both URL forms Binance serves for futures user data.
	for _, p := range []string{"/binance-usdm/ws/" + lk, "/binance-usdm/private/ws?listenKey=" + lk} {
		c := wsDial(t, env, p)
		if m := wsRead(t, c); m["e"] != "outboundAccountPosition" {
			t.Errorf("event %v", m)
		}
		c.CloseNow()
	}
	forged := strings.Repeat("Cd3", 20)
	for _, p := range []string{"/binance-usdm/private/ws?listenKey=" + forged, "/binance-usdm/private/ws?listenKey=short", "/binance-usdm/market/ws/" + forged} {
		if st := dialStatus(t, "ws"+strings.TrimPrefix(env.URL, "http")+p); st != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", strings.ReplaceAll(p, forged, "<forged>"), st)
		}
	}
	if st := dialStatus(t, "ws"+strings.TrimPrefix(env.URL, "http")+"/binance/ws/"+lk); st != http.StatusForbidden {
		t.Errorf("futures listen key on the spot venue: %d, want 403", st)
	}
	env.CheckAudit(lk)
}

// TestWSListenKeyMadeElsewhere: a listen key keywarden did not see being
// made (made on another replica, or directly at the venue) is refused
// until a keep-alive through this keywarden, which the venue accepts only
// for that exchange key's own listen key, binds it to the credential that
// sent it. The keep-alive here carries the key in a form body, and the
// audit log still holds only its tag.
func TestWSListenKeyMadeElsewhere(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"reader": {Scopes: []string{"read"}},
	})
	key := env.AddKey("binance", "main", "read")
	env.AddKey("binance", "second", "read")
	iss := env.Issue("binance", "main", "reader")
	stranger := env.Issue("binance", "second", "reader")
	req, _ := http.NewRequest("POST", env.Sims["binance"].URL+"/api/v3/userDataStream", nil)
	req.Header.Set("X-MBX-APIKEY", key.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var made struct{ ListenKey string }
	_ = json.NewDecoder(resp.Body).Decode(&made)
	resp.Body.Close()
	lk := made.ListenKey
	gwWS := "ws" + strings.TrimPrefix(env.URL, "http")
	if st := dialStatus(t, gwWS+"/binance/ws/"+lk); st != http.StatusForbidden {
		t.Fatalf("stream of a listen key made elsewhere: %d, want 403", st)
	}
	keepAlive := func(apiKey string) int {
		req, _ := http.NewRequest("PUT", env.URL+"/binance/api/v3/userDataStream", strings.NewReader("listenKey="+lk))
		req.Header.Set("X-MBX-APIKEY", apiKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A credential of another exchange key cannot claim it: the venue
	// refuses the keep-alive.
	if st := keepAlive(stranger.ID); st == 200 {
		t.Error("a keep-alive with another exchange key succeeded")
	}
	if st := dialStatus(t, gwWS+"/binance/ws/"+lk); st != http.StatusForbidden {
		t.Errorf("stream after a refused keep-alive: %d, want 403", st)
	}
	if st := keepAlive(iss.ID); st != 200 {
		t.Fatalf("keep-alive: %d", st)
	}
	c := wsDial(t, env, "/binance/ws/"+lk)
	if m := wsRead(t, c); m["e"] != "outboundAccountPosition" {
		t.Errorf("event %v", m)
	}
	recs := env.CheckAudit(lk)
	bodies := 0
	for _, r := range recs {
		if r.Intent != nil && strings.HasPrefix(r.Intent.Body, "listenKey=lk-hmac:") {
			bodies++
		}
	}
	if bodies != 2 {
		t.Errorf("%d keep-alive records carry the tagged body, want 2", bodies)
	}
}

// TestWSListenKeyPanic: the panic switch closes user-data streams (1013,
// as every socket) and closes their listen keys at the venue, so no bot
// keeps reading its account directly while keywarden is stopped.
func TestWSListenKeyPanic(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"reader": {Scopes: []string{"read"}},
	})
	env.AddKey("binance", "main", "read")
	iss := env.Issue("binance", "main", "reader")
	st, lk := listenKeyCall(t, env, "POST", "/binance/api/v3/userDataStream", "", iss.ID)
	if st != 200 {
		t.Fatalf("create: %d", st)
	}
	c := wsDial(t, env, "/binance/ws/"+lk)
	wsRead(t, c)
	env.Server.Gateway.Stop()
	if code := waitClose(t, c, 15*time.Second); code != websocket.StatusTryAgainLater {
		t.Errorf("stream after the panic switch ended with %v, want 1013", code)
	}
	simWS := "ws" + strings.TrimPrefix(env.Sims["binance"].URL, "http")
	closed := false
	for deadline := time.Now().Add(10 * time.Second); !closed && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		closed = dialStatus(t, simWS+"/ws/"+lk) != 0
	}
	if !closed {
		t.Error("the listen key still streams at the venue after the panic switch")
	}
	env.Server.Gateway.Resume()
	if st := dialStatus(t, "ws"+strings.TrimPrefix(env.URL, "http")+"/binance/ws/"+lk); st != http.StatusForbidden {
		t.Errorf("stream after resume: %d, want 403", st)
	}
	env.CheckAudit(lk)
}
