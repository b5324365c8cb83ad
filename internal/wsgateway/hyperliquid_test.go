package wsgateway

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
)

// TestClientPath: /c/<client id>/<API path> binds a socket to a client for
// a WSAPI that takes one (Hyperliquid), and is no WebSocket path otherwise.
func TestClientPath(t *testing.T) {
	api, err := hyperliquid.NewWSAPI(hyperliquid.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("wss://api.hyperliquid.xyz")
	p, err := New(Options{Routes: []Route{{Venue: "hyperliquid", Streams: u, API: u, APIPaths: []string{"/ws"}, WSAPI: api}},
		Clients: noClients{}, Keys: noKeys{}, Policy: denyAll{}, Audit: noAudit{}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		path   string
		serves bool
		client string
	}{
		{"/hyperliquid/ws", true, ""},
		{"/hyperliquid/c/kwBOT/ws", true, "kwBOT"},
		{"/hyperliquid/c//ws", false, ""},
		{"/hyperliquid/c/kwBOT/other", false, ""},
		{"/hyperliquid/c/kwBOT", false, ""},
		{"/hyperliquid/x/kwBOT/ws", false, ""},
		{"/hyperliquid/c/kwBOT/ws/more", false, ""},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(http.MethodGet, "http://gw"+tt.path, nil)
		r.Header.Set("Upgrade", "websocket")
		if got := p.Serves(r); got != tt.serves {
			t.Errorf("Serves(%s) = %v, want %v", tt.path, got, tt.serves)
		}
		_, rest := splitVenue(tt.path)
		a, up, ok := clientPathAPI(p.routes["hyperliquid"], rest)
		if ok != (tt.client != "") {
			t.Errorf("clientPathAPI(%s) ok = %v, want %v", rest, ok, tt.client != "")
			continue
		}
		if !ok {
			continue
		}
		if up != "/ws" {
			t.Errorf("clientPathAPI(%s) dials %s, want /ws", rest, up)
		}
		m, err := a.Parse([]byte(`{"method":"post","id":1,"request":{"type":"action","payload":{"action":{"type":"noop"},"nonce":1,"signature":{"r":"0x1","s":"0x1","v":27}}}}`))
		if err != nil || m.ClientKey != tt.client {
			t.Errorf("socket of %s: Parse = %+v, %v, want client %s", tt.path, m, err, tt.client)
		}
	}
}
