package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// testVenue is a minimal header-signed HMAC venue for the gateway's own
// tests: X-Key names the key, X-Ts is the time in ms, X-Sig is
// hex(HMAC-SHA256(secret, ts+method+path+"?"+query+body)).
type testVenue struct{}

func newTestVenue(upstream string) exchange.Venue {
	u, _ := url.Parse(upstream)
	return exchange.Venue{
		Name: "tv", Upstream: u, Signer: testVenue{}, Verifier: testVenue{}, Describer: testVenue{},
		Errors: testVenue{}, Limits: testVenue{}, KeyKinds: []exchange.KeyKind{exchange.KeyHMAC},
	}
}

func tvPayload(r *exchange.Request, ts string) []byte {
	return []byte(ts + r.Method + r.Path + "?" + r.RawQuery + string(r.Body))
}

func tvSign(secret []byte, payload []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	return hex.EncodeToString(m.Sum(nil))
}

func (testVenue) Sign(r *exchange.Request, key *exchange.Credential, now time.Time) error {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	r.Header.Set("X-Key", key.APIKey)
	r.Header.Set("X-Ts", ts)
	r.Header.Set("X-Sig", tvSign(key.Secret, tvPayload(r, ts)))
	return nil
}

func (testVenue) ClientKey(r *exchange.Request) (string, error) {
	return r.Header.Get("X-Key"), nil
}

func (testVenue) Verify(r *exchange.Request, c *exchange.Credential, now time.Time) (*exchange.Request, error) {
	ts := r.Header.Get("X-Ts")
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "bad timestamp")
	}
	if d := now.Sub(time.UnixMilli(ms)); d > 5*time.Second || d < -time.Second {
		return nil, exchange.Errorf(exchange.ErrTimestamp, "timestamp outside window")
	}
	want := tvSign(c.Secret, tvPayload(r, ts))
	if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Sig"))) {
		return nil, exchange.Errorf(exchange.ErrAuth, "signature invalid")
	}
	out := r.Clone()
	out.Header.Del("X-Key")
	out.Header.Del("X-Ts")
	out.Header.Del("X-Sig")
	return out, nil
}

func (testVenue) Describe(r *exchange.Request) (exchange.Call, error) {
	c := exchange.Call{Method: r.Method, Path: r.Path, Endpoint: r.Method + " " + r.Path}
	ps, err := exchange.ParseQuery(r.RawQuery)
	if err != nil {
		return c, err
	}
	switch {
	case strings.HasPrefix(r.Path, "/public/"):
		c.Scope = exchange.ScopePublic
	case r.Path == "/balance":
		c.Scope = exchange.ScopeRead
	case r.Path == "/order" && r.Method == http.MethodPost:
		c.Scope = exchange.ScopeTrade
		c.Orders = []exchange.Order{{Action: exchange.ActionNew, Symbol: ps.Get("symbol"), Side: exchange.Side(ps.Get("side")),
			Quantity: ps.Float("qty"), Price: ps.Float("price"), ClientOrderID: ps.Get("cid")}}
	case r.Path == "/withdraw":
		c.Scope = exchange.ScopeWithdraw
		c.Transfer = &exchange.Transfer{Asset: ps.Get("asset"), Amount: ps.Float("amount"), Address: ps.Get("address")}
	default:
		c.Scope = exchange.ScopeAccountAdmin
	}
	return c, nil
}

func (testVenue) WriteError(w http.ResponseWriter, e *exchange.Error) {
	status := statusOf(e.Kind)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": int(e.Kind), "msg": e.Message})
}

func (testVenue) RateLimit(h http.Header) (exchange.RateLimit, bool) {
	used, err1 := strconv.Atoi(h.Get("X-Used"))
	limit, err2 := strconv.Atoi(h.Get("X-Limit"))
	if err1 != nil || err2 != nil {
		return exchange.RateLimit{}, false
	}
	return exchange.RateLimit{Used: used, Limit: limit, Window: time.Minute}, true
}
