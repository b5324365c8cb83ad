package dashboard

import (
	"strings"
	"testing"
)

// TestClientListShowsReadOnly: a downgraded credential is listed as
// read-only and can still be revoked from the page.
func TestClientListShowsReadOnly(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.srv.Clients.SetReadOnly(t.Context(), "binance", e.client, "automatic-response", "alert al-1"); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login("trader-ops")
	list := b.get("/ui/clients")
	row := list.body[strings.Index(list.body, e.client):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, `st-read-only">read-only<`) {
		t.Errorf("client row does not say read-only:\n%s", row)
	}
	if !strings.Contains(row, "/revoke") {
		t.Errorf("a read-only client cannot be revoked from the page:\n%s", row)
	}
}
