package posture

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

// newCredential makes a fresh key of v's preferred kind.
func newCredential(t *testing.T, v exchange.Venue) *exchange.Credential {
	t.Helper()
	id := make([]byte, 12)
	rand.Read(id)
	c := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: hex.EncodeToString(id), Account: "7"}
	kind := exchange.KeyHMAC
	if len(v.KeyKinds) > 0 {
		kind = v.KeyKinds[0]
	}
	switch kind {
	case exchange.KeyEd25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c.Kind, c.PrivateKey, c.PublicKey = kind, priv, pub
	case exchange.KeyECDSA:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c.Kind, c.PrivateKey, c.PublicKey = kind, priv, &priv.PublicKey
	default:
		sec := make([]byte, 24)
		rand.Read(sec)
		c.Secret = exchange.Secret(hex.EncodeToString(sec))
	}
	if v.NeedsPassphrase {
		c.Passphrase = exchange.Secret("sim-passphrase")
	}
	return c
}

// TestInspectSimulators checks every venue with an Inspector against its
// simulator: a read+trade key restricted to the gateway's address is clean,
// and a key that can also withdraw and has no allowlist is critical.
func TestInspectSimulators(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pol := Policy{EgressIPs: []string{"127.0.0.1"}}
	tests := []struct {
		name  string
		perms []string
		ips   []string
		want  []string // finding codes
		// byVenue replaces want for venues whose permission model or
		// self-inspection gives other findings.
		byVenue map[string][]string
	}{
		{"least privilege", []string{"read", "trade"}, []string{"127.0.0.1"}, nil, map[string][]string{
			// a trade key may move funds between the key's own accounts
			"okx": {CodeTransfer}, "kraken-futures": {CodeTransfer},
			"coinbase": {CodeIPUnknown},
			// account/detail lists no permissions
			"gate": {CodePermsUnknown},
		}},
		{"withdraw and no allowlist", []string{"read", "trade", "withdraw"}, nil, []string{CodeWithdraw, CodeNoIP}, map[string][]string{
			"coinbase": {CodeWithdraw, CodeIPUnknown},
			// account/detail lists no permissions
			"gate": {CodePermsUnknown, CodeNoIP},
		}},
	}
	for _, def := range venues.Known() {
		v := def.Build(&url.URL{Scheme: "http", Host: "placeholder"})
		if v.Inspector == nil || def.Simulator == nil {
			continue
		}
		for _, tt := range tests {
			t.Run(def.Name+"/"+tt.name, func(t *testing.T) {
				kit := sim.NewKit()
				kit.Now = func() time.Time { return now }
				srv := httptest.NewServer(def.Simulator(kit))
				defer srv.Close()
				u, _ := url.Parse(srv.URL)
				v := def.Build(u)
				cred := newCredential(t, v)
				perms := map[string]bool{}
				for _, p := range tt.perms {
					perms[p] = true
				}
				kit.AddAccount(sim.Account{Key: *cred, Permissions: perms, IPs: tt.ips, Created: now.Add(-24 * time.Hour)})
				p, err := Inspect(context.Background(), srv.Client(), v, cred, now)
				if err != nil {
					t.Fatalf("Inspect = %v", err)
				}
				key := vault.KeyInfo{Exchange: def.Exchange, Name: "bot", Scopes: []string{"read", "trade"}, Created: now, Rotated: now, LastUsed: now}
				var got []string
				for _, f := range Evaluate(key, p, pol, now) {
					got = append(got, f.Code)
				}
				want := tt.want
				if e, ok := tt.byVenue[def.Name]; ok {
					want = e
				}
				if !equalSet(got, want) {
					t.Errorf("Evaluate(%+v) codes = %v, want %v", p, got, want)
				}
			})
		}
	}
}

func equalSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestInspectFailures checks that a venue error or a venue without an
// Inspector gives an error that never shows the key's secret.
func TestInspectFailures(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, def := range venues.Known() {
		if def.Simulator == nil {
			continue
		}
		t.Run(def.Name, func(t *testing.T) {
			kit := sim.NewKit()
			kit.Now = func() time.Time { return now }
			srv := httptest.NewServer(def.Simulator(kit))
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			v := def.Build(u)
			cred := newCredential(t, v)
			kit.AddAccount(sim.Account{Key: *cred, Permissions: map[string]bool{"read": true}})
			kit.Inject(sim.Fault{Status: 500, Body: `{"error":"down"}`, Count: 1})
			_, err := Inspect(context.Background(), srv.Client(), v, cred, now)
			if err == nil {
				t.Fatalf("Inspect with the venue down = nil error, want one")
			}
			if v.Inspector == nil && !errors.Is(err, ErrNoInspector) {
				t.Errorf("Inspect without an Inspector = %v, want ErrNoInspector", err)
			}
			if len(cred.Secret) > 0 && strings.Contains(err.Error(), string(cred.Secret)) {
				t.Errorf("Inspect error %q shows the secret", err)
			}
		})
	}
}
