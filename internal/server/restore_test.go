package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/policy"
)

// TestRestoreWindowsFromAudit: after a restart the rolling windows hold
// what the audit log says was allowed within them: calls the venue refused
// are given back, calls without an outcome count, calls of deleted
// credentials and older than the window do not, and hashed client fields
// are matched.
func TestRestoreWindowsFromAudit(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		name := "plain"
		if hashed {
			name = "hashed client field"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			hashKey := make([]byte, 32)
			rand.Read(hashKey)
			opts := audit.Options{Dir: dir, Signer: priv, NoSync: true}
			if hashed {
				opts.HashKey, opts.HashFields = hashKey, []string{audit.FieldClient}
			}
			now := time.Now()
			opts.Now = func() time.Time { return now.Add(-30 * time.Minute) }
			l, err := audit.Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			order := exchange.Call{Venue: "binance", Endpoint: "POST /api/v3/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 1, Price: 100}}}
			write := func(id, cli string, status int) {
				t.Helper()
				if _, err := l.Append(ctx, audit.Record{Type: audit.TypeIntent, RequestID: id, Intent: &audit.Intent{
					Client: cli, Key: "main", Venue: "binance", Call: order, Decision: audit.DecisionAllow}}); err != nil {
					t.Fatal(err)
				}
				if status != 0 {
					if _, err := l.Append(ctx, audit.Record{Type: audit.TypeOutcome, RequestID: id, Outcome: &audit.Outcome{Status: status}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			write("r1", "bot-a", 200)
			write("r2", "bot-a", 400) // refused by the venue: given back
			write("r3", "bot-a", 0)   // no outcome: the order may exist
			write("r4", "gone", 200)  // credential deleted since
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			p, err := policy.Compile("spot", policy.Definition{Scopes: []string{"trade"},
				Windows: []policy.WindowDef{{Duration: "1h", MaxNotional: 250, MaxOrders: 10}}})
			if err != nil {
				t.Fatal(err)
			}
			e := policy.NewEngine(policy.Options{Policies: map[string]*policy.Policy{"spot": p}})
			clients := []client.Client{{ID: "bot-a", Venue: "binance", Key: "main", Policy: "spot", Expires: now.Add(time.Hour)}}
			var hk []byte
			if hashed {
				hk = hashKey
			}
			n, err := restoreWindows(ctx, dir, e, clients, map[string]string{"binance": "binance"}, hk, now)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Fatalf("restored %d calls, want 2 (r1 and r3)", n)
			}
			in := policy.Input{Call: order, Client: "bot-a", Key: "binance/main", Venue: "binance", Now: now, CredentialExpires: now.Add(time.Hour)}
			// 200 restored + 100 > 250; without r3 (or with r2) it would differ.
			_, err = e.Check("spot", in)
			var d *policy.Denial
			if !errors.As(err, &d) || d.Rule != "window_notional" {
				t.Fatalf("Check() after restore = %v, want a window_notional denial", err)
			}
			// Once the restored calls leave the hour, the budget is back.
			in.Now = now.Add(31 * time.Minute)
			if _, err := e.Check("spot", in); err != nil {
				t.Fatalf("Check() after the window passed = %v, want allowed", err)
			}
		})
	}
}
