package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/audit"
)

// TestPanicFormVenueOptions: the panic form's venue options reach the
// stop's audit record, from which keywarden serve runs them.
func TestPanicFormVenueOptions(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("admin")
	pg := b.get("/ui/panic")
	for _, want := range []string{`name="cancel_orders"`, `name="delete_keys"`, `name="reason"`} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("the panic page lacks %s", want)
		}
	}
	form := url.Values{"confirm": {"stop"}, "csrf": {pg.csrf()}, "cancel_orders": {"1"}, "delete_keys": {"1"}, "reason": {"bot host leaked"}}
	p := b.do("POST", "/ui/panic/stop", form, "Origin", e.ts.URL, "Sec-Fetch-Site", "same-origin")
	if p.status != http.StatusSeeOther {
		t.Fatalf("POST /ui/panic/stop = %d\n%s", p.status, p.body)
	}
	if err := e.srv.Gateway.Healthy(); err == nil {
		t.Error("the gateway still runs after the stop")
	}
	var detail map[string]string
	for rec, err := range audit.Search(e.srv.Audit.Dir(), audit.Filter{Types: []audit.Type{audit.TypeEvent}}) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Event != nil && rec.Event.Kind == "admin.gateway.stop" {
			detail = rec.Event.Detail
		}
	}
	if detail["cancel_orders"] != "true" || detail["delete_keys"] != "true" || detail["reason"] != "bot host leaked" {
		t.Errorf("stop audit detail = %v, want the venue options and the reason", detail)
	}
}
