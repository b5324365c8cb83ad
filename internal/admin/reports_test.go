package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/operator"
)

// fakeReports renders the keys the caller may see, in the asked format.
type fakeReports struct{}

func (fakeReports) Compliance(_ context.Context, format string, inScope func(venue, name string) bool) ([]byte, error) {
	var keys []string
	for _, k := range []string{"binance/main", "binance/other"} {
		v, n, _ := strings.Cut(k, "/")
		if inScope(v, n) {
			keys = append(keys, k)
		}
	}
	if format == "json" {
		return json.Marshal(map[string]any{"keys": keys})
	}
	return []byte(format + ": " + strings.Join(keys, ",")), nil
}

// TestComplianceReport: the report comes in the asked format with its
// content type, over the keys in the caller's scope only.
func TestComplianceReport(t *testing.T) {
	e := newEnv(t, nil)
	if _, enr, err := e.ops.Create(context.Background(), operator.CreateOptions{Name: "scoped-auditor", Role: operator.RoleAuditor,
		Keys: []string{"binance/main"}, Password: []byte(password)}); err != nil {
		t.Fatal(err)
	} else {
		e.seeds["scoped-auditor"] = enr.Seed
	}
	tok := e.login("auditor")
	r := e.do("GET", "/v1/reports/compliance", tok, nil)
	if r.status != http.StatusOK || strings.Join(anyStrings(r.body["keys"]), ",") != "binance/main,binance/other" {
		t.Fatalf("json report = %d %s, want both keys", r.status, r.raw)
	}
	for format, ct := range map[string]string{"md": "text/markdown", "html": "text/html"} {
		req, _ := http.NewRequest("GET", e.ts.URL+"/v1/reports/compliance?format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), ct) {
			t.Errorf("%s report = %d %q, want 200 %s", format, res.StatusCode, res.Header.Get("Content-Type"), ct)
		}
	}
	if r := e.do("GET", "/v1/reports/compliance?format=pdf", tok, nil); r.status != http.StatusBadRequest {
		t.Errorf("pdf report = %d, want 400", r.status)
	}
	r = e.do("GET", "/v1/reports/compliance", e.login("scoped-auditor"), nil)
	if r.status != http.StatusOK || strings.Join(anyStrings(r.body["keys"]), ",") != "binance/main" {
		t.Errorf("scoped report = %d %s, want binance/main only", r.status, r.raw)
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
