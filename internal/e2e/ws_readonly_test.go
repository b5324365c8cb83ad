package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/policy"
)

// TestWSAPISessionReadOnly: a client downgraded to read-only while its
// Binance WS API session is open can no longer place orders on that
// session (refused naming rule read_only, nothing reaches the venue) but
// still reads its account; restoring trading lets it order again.
func TestWSAPISessionReadOnly(t *testing.T) {
	env := NewEnv(t, []string{"binance"}, map[string]policy.Definition{
		"trader": {Scopes: []string{"read", "trade"}, MaxOrderNotional: 1000, NotionalCurrency: "USDT"},
	})
	kit := env.Sims["binance"].Kit
	exKey := addEd25519Key(t, env, "ed", "read", "trade")
	botKey, pubPEM := ed25519Client(t)
	iss, err := env.Clients.Issue(context.Background(), client.IssueOptions{Venue: "binance", Key: "ed", Policy: "trader", TTL: time.Hour,
		Kind: exchange.KeyEd25519, PublicKeyPEM: pubPEM})
	if err != nil {
		t.Fatal(err)
	}
	cred := &exchange.Credential{Kind: exchange.KeyEd25519, APIKey: iss.ID, PrivateKey: botKey}
	c := wsDial(t, env, "/binance/ws-api/v3")
	if m := wsCall(t, c, "l", "session.logon", wsSigned(t, cred, nil)); wsStatus(m) != 200 {
		t.Fatalf("session.logon: %v", m)
	}
	ts := func() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }
	order := map[string]string{"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "60000"}
	place := func(id string) map[string]any {
		order["timestamp"] = ts()
		return wsCall(t, c, id, "order.place", order)
	}
	if m := place("o1"); wsStatus(m) != 200 || len(kit.Orders(exKey)) != 1 {
		t.Fatalf("order.place before the downgrade: %v; simulator orders %d", m, len(kit.Orders(exKey)))
	}
	if _, _, err := env.Clients.SetReadOnly(context.Background(), "binance", iss.ID, "automatic-response", "alert al-1"); err != nil {
		t.Fatal(err)
	}
	if m := place("o2"); wsStatus(m) < 400 || !strings.Contains(wsErrorMsg(m), "read_only") {
		t.Errorf("order.place on the session after the downgrade: %v, want a read_only refusal", m)
	}
	if n := len(kit.Orders(exKey)); n != 1 {
		t.Errorf("the venue holds %d orders, want 1 (the refused one never reached it)", n)
	}
	if m := wsCall(t, c, "a", "account.status", map[string]string{"timestamp": ts()}); wsStatus(m) != 200 {
		t.Errorf("account.status on the read-only session: %v, want 200", m)
	}
	if _, err := env.Clients.RestoreTrading(context.Background(), "binance", iss.ID); err != nil {
		t.Fatal(err)
	}
	if m := place("o3"); wsStatus(m) != 200 || len(kit.Orders(exKey)) != 2 {
		t.Errorf("order.place after restoring trading: %v; simulator orders %d", m, len(kit.Orders(exKey)))
	}
}
