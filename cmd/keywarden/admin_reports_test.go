package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
)

// TestAdminComplianceReport: the admin API's report takes the findings of
// the latest scheduled run for the keys it checked, the lifecycle checks
// for the others, leaves out keys out of scope, and adds no history.
func TestAdminComplianceReport(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("report test passphrase"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"main", "spare", "hidden"} {
		if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "binance", Name: n, APIKey: "key-" + n, Secret: exchange.Secret("secret-" + n)}); err != nil {
			t.Fatal(err)
		}
	}
	h := posture.NewHistory(st, 0)
	if err := h.Add(ctx, posture.Run{Time: time.Now().Add(-time.Hour), Keys: []string{"binance/main"},
		Findings: []posture.Finding{{Key: "binance/main", Code: posture.CodeWithdraw, Severity: posture.Critical, Message: "withdrawals are enabled"}}}); err != nil {
		t.Fatal(err)
	}
	pol := posture.DefaultPolicy()
	pol.UnusedAfter = time.Nanosecond // every unchecked key is "unused"
	r := &adminReports{v: v, st: st, pol: pol, history: h}
	b, err := r.Compliance(ctx, "json", func(venue, name string) bool { return name != "hidden" })
	if err != nil {
		t.Fatal(err)
	}
	var rep posture.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	got := map[string][]string{}
	for _, k := range rep.Keys {
		got[k.Key.ID()] = nil
		for _, f := range k.Findings {
			got[k.Key.ID()] = append(got[k.Key.ID()], f.Code)
		}
	}
	if len(got) != 2 || strings.Join(got["binance/main"], ",") != posture.CodeWithdraw || strings.Join(got["binance/spare"], ",") != posture.CodeUnused {
		t.Errorf("report keys and findings = %v, want main with the run's withdraw finding and spare unused, hidden left out", got)
	}
	if strings.Contains(string(b), "secret-") {
		t.Errorf("the report shows a secret")
	}
	if hist, _ := loadHistory(ctx, st); len(hist) != 0 {
		t.Errorf("the API report saved %d history snapshots, want none", len(hist))
	}
}
