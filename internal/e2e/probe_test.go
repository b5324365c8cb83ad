package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/venues"
)

// TestProbeAnswersAlike is A3/A4 on every venue with an HMAC client scheme:
// a known credential id with a wrong secret (or a wrong passphrase) answers
// exactly like an id keywarden does not know (status and body), so ids
// cannot be probed; nothing reaches the simulator; the audit records keep
// the real cause apart.
func TestProbeAnswersAlike(t *testing.T) {
	for _, def := range venues.Known() {
		t.Run(def.Name, func(t *testing.T) {
			env := NewEnv(t, []string{def.Name}, map[string]policy.Definition{"reader": {Scopes: []string{"read"}}})
			up, err := url.Parse(def.Upstream)
			if err != nil {
				t.Fatal(err)
			}
			v := def.Build(up)
			probe := probeCalls[def.Name]
			if probe == nil && v.Inspector != nil {
				probe = v.Inspector.InspectRequest()
			}
			if probe == nil {
				t.Skipf("%s has no HMAC-signed read call to probe with (its bots sign with a wallet key)", def.Name)
			}
			env.AddKey(def.Name, "main", "read")
			known := env.Issue(def.Name, "main", "reader")
			gone := env.Issue(def.Name, "main", "reader")
			if err := env.Clients.Revoke(context.Background(), def.Name, gone.ID); err != nil {
				t.Fatal(err)
			}
			send := func(id string, secret, pass exchange.Secret) (int, string) {
				t.Helper()
				r := probe.Clone()
				cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: id, Secret: secret, Passphrase: pass}
				if err := v.Signer.Sign(r, cred, time.Now()); err != nil {
					t.Fatalf("sign: %v", err)
				}
				target := env.URL + "/" + def.Name + r.Path
				if r.RawQuery != "" {
					target += "?" + r.RawQuery
				}
				req, err := http.NewRequest(r.Method, target, bytes.NewReader(r.Body))
				if err != nil {
					t.Fatal(err)
				}
				for k, vs := range r.Header {
					req.Header[k] = vs
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			before := len(env.Sims[def.Name].Kit.Log())
			okStatus, okBody := send(known.ID, known.Secret, known.Passphrase)
			if okStatus != http.StatusOK {
				t.Fatalf("control: the right secret answers %d %q, want 200", okStatus, okBody)
			}
			if got := len(env.Sims[def.Name].Kit.Log()) - before; got < 1 {
				t.Fatalf("control: the simulator received %d requests, want the call", got)
			}
			before = len(env.Sims[def.Name].Kit.Log())
			unkStatus, unkBody := send(gone.ID, gone.Secret, gone.Passphrase)
			want := httptest.NewRecorder()
			v.Errors.WriteError(want, exchange.Errorf(exchange.ErrAuth, "invalid API key or signature"))
			if unkStatus != want.Code || unstamped(unkBody) != unstamped(want.Body.String()) {
				t.Errorf("unknown id: %d %q, want the venue's invalid-key answer %d %q", unkStatus, unkBody, want.Code, want.Body.String())
			}
			probes := map[string][2]exchange.Secret{"wrong secret": {gone.Secret, known.Passphrase}}
			if known.Passphrase != nil {
				probes["wrong passphrase"] = [2]exchange.Secret{known.Secret, gone.Passphrase}
			}
			for what, p := range probes {
				status, body := send(known.ID, p[0], p[1])
				if status != unkStatus || unstamped(body) != unstamped(unkBody) {
					t.Errorf("known id, %s: %d %q, want the unknown id's answer %d %q", what, status, body, unkStatus, unkBody)
				}
			}
			if got := len(env.Sims[def.Name].Kit.Log()) - before; got != 0 {
				t.Errorf("the simulator received %d requests from refused probes, want 0", got)
			}
			// The records tell the causes apart for the operator.
			var reasons []string
			for _, r := range env.Records() {
				if r.Intent != nil && r.Intent.Decision == "deny" {
					reasons = append(reasons, r.Intent.Client+": "+r.Intent.Reason)
				}
			}
			if len(reasons) != 1+len(probes) {
				t.Errorf("audit denials = %q, want %d", reasons, 1+len(probes))
			}
			if len(reasons) > 0 && reasons[0] == reasons[len(reasons)-1] {
				t.Errorf("audit reasons %q do not tell an unknown id from a bad signature", reasons)
			}
		})
	}
}

// probeCalls are signed reads for venues whose key self-inspection is not
// an ordinary signed call (Deribit's is the auth grant) or that have none.
var probeCalls = map[string]*exchange.Request{
	"deribit":      {Method: http.MethodGet, Path: "/api/v2/private/get_account_summary", RawQuery: "currency=BTC", Header: http.Header{}},
	"binance-usdm": {Method: http.MethodGet, Path: "/fapi/v2/account", Header: http.Header{}},
}

// stamps are the server times venues put in error bodies.
var stamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z?|\d{10,}`)

// unstamped is body without its server times.
func unstamped(body string) string { return stamps.ReplaceAllString(body, "<time>") }
