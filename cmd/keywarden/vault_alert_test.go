package main

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/monitor"
)

func TestVaultTamperAlerts(t *testing.T) {
	var got []monitor.Alert
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	report := vaultTamperAlerts(func(al monitor.Alert) { got = append(got, al) }, func() time.Time { return now })
	errRolled := errors.New("vault: binance/main rolled back to version 2 (want 3)")
	report("binance", "main", errRolled)
	report("binance", "main", errRolled) // same key, same minute: not again
	report("okx", "main", errRolled)
	now = now.Add(vaultTamperEvery)
	report("binance", "main", errRolled)
	var subjects []string
	for _, al := range got {
		if al.Rule != ruleVaultTamper || al.Severity != monitor.SeverityCritical || al.Evidence["error"] != errRolled.Error() {
			t.Errorf("alert = %+v, want a critical %s naming the error", al, ruleVaultTamper)
		}
		subjects = append(subjects, al.Subject)
	}
	if diff := cmp.Diff([]string{"key:binance/main", "key:okx/main", "key:binance/main"}, subjects); diff != "" {
		t.Errorf("alerted subjects (-want +got):\n%s", diff)
	}
}
