package kucoin

import (
	"net/url"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestDeleteKeyRequest(t *testing.T) {
	km := keyManager{}
	r, err := km.DeleteKeyRequest("sub-key-1", exchange.KeySpec{SubAccount: "bot1", Passphrase: exchange.Secret("p&ss word")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := url.ParseQuery(r.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "DELETE" || r.Path != "/api/v1/sub/api-key" || q.Get("apiKey") != "sub-key-1" || q.Get("passphrase") != "p&ss word" || q.Get("subName") != "bot1" {
		t.Errorf("DeleteKeyRequest = %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	for _, spec := range []exchange.KeySpec{{SubAccount: "bot1"}, {Passphrase: exchange.Secret("p")}} {
		if _, err := km.DeleteKeyRequest("k", spec); err == nil {
			t.Errorf("DeleteKeyRequest(%+v) = nil error, want one", spec)
		}
	}
}
