package server

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/venues"
)

// TestWSRoutesHyperliquid: Hyperliquid's WebSocket follows its REST
// upstream (mainnet, testnet or a loopback simulator), and its WS API
// shares the REST venue's replay memory: a signed action verified over
// REST is a replay over the WebSocket.
func TestWSRoutesHyperliquid(t *testing.T) {
	def, err := venues.ByName("hyperliquid")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		upstream string // "" for the default
		want     string
	}{
		{"", "wss://api.hyperliquid.xyz"},
		{hyperliquid.TestnetUpstream, "wss://api.hyperliquid-testnet.xyz"},
		{"http://127.0.0.1:8123", "ws://127.0.0.1:8123"},
	}
	for _, tt := range tests {
		r := Route{Def: def}
		if tt.upstream != "" {
			r.Upstream, _ = url.Parse(tt.upstream)
		}
		u := r.Upstream
		if u == nil {
			u, _ = url.Parse(def.Upstream)
		}
		ven := def.Build(u)
		got, err := wsRoutes([]Route{r}, map[string]exchange.Venue{def.Name: ven})
		if err != nil || len(got) != 1 {
			t.Fatalf("wsRoutes(%s) = %v, %v", tt.upstream, got, err)
		}
		if got[0].Streams.String() != tt.want || got[0].API.String() != tt.want || got[0].WSAPI == nil {
			t.Errorf("upstream %q: streams %s api %s, want %s", tt.upstream, got[0].Streams, got[0].API, tt.want)
		}
		if tt.upstream != "" {
			continue
		}
		secret := exchange.Secret("kwclientsecret-ws-0123456789")
		client := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kwBOT", Secret: secret}
		key, _ := hyperliquid.ClientPrivateKey(secret)
		now := time.Now()
		body, err := hyperliquid.SignBody(key, []byte(`{"action":{"type":"noop"},"nonce":`+itoa(now.UnixMilli())+`,"vaultAddress":null}`), hyperliquid.Mainnet)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ven.Verifier.Verify(&exchange.Request{Method: "POST", Path: "/c/kwBOT/exchange", Body: body}, client, now); err != nil {
			t.Fatal(err)
		}
		api, ok := got[0].WSAPI.(interface {
			ForClient(string) (exchange.WSAPI, bool)
		})
		if !ok {
			t.Fatal("the Hyperliquid WS API does not bind sockets to clients")
		}
		ws, _ := api.ForClient("kwBOT")
		msg := []byte(`{"method":"post","id":1,"request":{"type":"action","payload":` + string(body) + `}}`)
		m, err := ws.Parse(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Verify(msg, m, client, now); exchange.AsError(err).Kind != exchange.ErrTimestamp {
			t.Errorf("WS Verify of a signature REST accepted = %v, want a replay refusal", err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
