package posture

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/vault"
	"github.com/keywarden/keywarden/internal/venues"
)

const day = 24 * time.Hour

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestEvaluate(t *testing.T) {
	pol := DefaultPolicy()
	pol.EgressIPs = []string{"203.0.113.7"}
	fresh := vault.KeyInfo{Exchange: "bybit", Name: "bot", Scopes: []string{"read", "trade"}, Created: testNow.Add(-10 * day), Rotated: testNow.Add(-10 * day), LastUsed: testNow.Add(-time.Hour)}
	old := fresh
	old.Rotated = testNow.Add(-100 * day)
	old.Created = old.Rotated
	due := fresh
	due.Rotated = testNow.Add(-80 * day)
	idle := fresh
	idle.LastUsed = testNow.Add(-40 * day)
	never := fresh
	never.LastUsed = time.Time{}
	never.Rotated = testNow.Add(-31 * day)
	readonly := fresh
	readonly.Scopes = []string{"read"}
	good := exchange.KeyPosture{CanRead: true, CanTrade: true, IPRestricted: true, IPs: []string{"203.0.113.7"}}
	withdraw := good
	withdraw.CanWithdraw, withdraw.CanTransfer = true, true
	transfer := good
	transfer.CanTransfer = true
	open := good
	open.IPRestricted, open.IPs = false, nil
	other := good
	other.IPs = []string{"198.51.100.1"}
	cidr := good
	cidr.IPs = []string{"203.0.113.0/24"}
	expiring := good
	expiring.Expires = testNow.Add(5 * day)
	later := good
	later.Expires = testNow.Add(60 * day)
	tests := []struct {
		name string
		key  vault.KeyInfo
		p    exchange.KeyPosture
		want []string
	}{
		{"clean", fresh, good, nil},
		{"withdraw undeclared", fresh, withdraw, []string{CodeWithdraw}},
		{"transfer undeclared", fresh, transfer, []string{CodeTransfer}},
		{"trade on read-only key", readonly, good, []string{CodeTrade}},
		{"no allowlist", fresh, open, []string{CodeNoIP}},
		{"allowlist without egress", fresh, other, []string{CodeIPMismatch}},
		{"allowlist by prefix", fresh, cidr, nil},
		{"too old", old, good, []string{CodeAge}},
		{"rotation due", due, good, []string{CodeRotationDue}},
		{"unused", idle, good, []string{CodeUnused}},
		{"never used since rotation", never, good, []string{CodeUnused}},
		{"venue expiry soon", fresh, expiring, []string{CodeExpiry}},
		{"venue expiry later", fresh, later, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range Evaluate(tt.key, tt.p, pol, testNow) {
				got = append(got, f.Code)
				if f.Key != tt.key.ID() {
					t.Errorf("finding key = %q, want %q", f.Key, tt.key.ID())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Evaluate(%s) codes (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	fs := []Finding{{Key: "b/x", Code: CodeUnused, Severity: Low}, {Key: "a/y", Code: CodeWithdraw, Severity: Critical}, {Key: "a/x", Code: CodeNoIP, Severity: High}}
	if got := Worst(fs); got != Critical {
		t.Errorf("Worst = %v, want critical", got)
	}
	if got := Worst(nil); got != Info {
		t.Errorf("Worst(nil) = %v, want info", got)
	}
	Sort(fs)
	var order []string
	for _, f := range fs {
		order = append(order, f.Key)
	}
	if diff := cmp.Diff([]string{"a/y", "a/x", "b/x"}, order); diff != "" {
		t.Errorf("Sort order (-want +got):\n%s", diff)
	}
	for s := Info; s <= Critical; s++ {
		b, _ := s.MarshalText()
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("UnmarshalText(%s) = %v, %v, want %v", b, back, err, s)
		}
	}
	var bad Severity
	if err := bad.UnmarshalText([]byte("urgent")); err == nil {
		t.Errorf("UnmarshalText(urgent) = nil error, want one")
	}
}

func TestDuplicates(t *testing.T) {
	keys := []vault.KeyInfo{
		{Exchange: "binance", Name: "a", Fingerprint: "f1"},
		{Exchange: "binance", Name: "b", Fingerprint: "f1"},
		{Exchange: "okx", Name: "c", Fingerprint: "f1"},
		{Exchange: "binance", Name: "d", Fingerprint: "f2"},
	}
	var got []string
	for _, f := range Duplicates(keys) {
		if f.Severity != High || f.Code != CodeDuplicate {
			t.Errorf("Duplicates finding = %+v, want high duplicate", f)
		}
		got = append(got, f.Key)
	}
	if diff := cmp.Diff([]string{"binance/a", "binance/b"}, got); diff != "" {
		t.Errorf("Duplicates keys (-want +got):\n%s", diff)
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		exchange string
		purpose  Purpose
		enable   string // one box that must be ticked
		disable  string // one box that must stay clear
		rotation string
		wantErr  bool
	}{
		{"binance", PurposeTrading, "Enable Spot & Margin Trading", "Enable Withdrawals", "automated", false},
		{"binance", PurposeReadonly, "Enable Reading", "Enable Spot & Margin Trading", "automated", false},
		{"kraken", PurposeWithdraw, "Withdraw Funds", "Create & Modify Orders", "guided", false},
		{"coinbase", PurposeTrading, "Trade", "Transfer", "guided", false},
		{"deribit", PurposeTrading, "trade:read_write", "account:read_write", "automated", false},
		{"nowhere", PurposeTrading, "", "", "", true},
		{"okx", "admin", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.exchange+"/"+string(tt.purpose), func(t *testing.T) {
			kp, err := Plan(tt.exchange, tt.purpose)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Plan(%s, %s) error = %v, want error %v", tt.exchange, tt.purpose, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !slices.Contains(kp.Enable, tt.enable) || slices.Contains(kp.Disable, tt.enable) {
				t.Errorf("Plan(%s, %s).Enable = %v, want %q ticked", tt.exchange, tt.purpose, kp.Enable, tt.enable)
			}
			if !slices.Contains(kp.Disable, tt.disable) || slices.Contains(kp.Enable, tt.disable) {
				t.Errorf("Plan(%s, %s).Disable = %v, want %q clear", tt.exchange, tt.purpose, kp.Disable, tt.disable)
			}
			if kp.Rotation != tt.rotation {
				t.Errorf("Plan(%s, %s).Rotation = %q, want %q", tt.exchange, tt.purpose, kp.Rotation, tt.rotation)
			}
			if txt := kp.Text(); !strings.Contains(txt, "[x] "+tt.enable) || !strings.Contains(txt, "[ ] "+tt.disable) {
				t.Errorf("Text() = %q, want both boxes", txt)
			}
		})
	}
}

// TestPlanEveryVenue checks that every known exchange has plans.
func TestPlanEveryVenue(t *testing.T) {
	for _, def := range venues.Known() {
		for _, p := range []Purpose{PurposeReadonly, PurposeTrading, PurposeWithdraw} {
			if kp, err := Plan(def.Exchange, p); err != nil || len(kp.Enable) == 0 || kp.IP == "" {
				t.Errorf("Plan(%s, %s) = %+v, %v, want a plan", def.Exchange, p, kp, err)
			}
		}
	}
}
