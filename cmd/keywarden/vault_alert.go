package main

import (
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/monitor"
)

// ruleVaultTamper names the alert for an exchange key the vault refused as
// tampered with or rolled back (spec/security.md V5, V7).
const ruleVaultTamper = "vault_tampered"

// vaultTamperEvery is how often one key's tampering is alerted again while
// requests keep failing on it.
const vaultTamperEvery = time.Minute

// vaultTamperAlerts turns the vault's refusals into critical alerts, at
// most one per key per vaultTamperEvery; raise must not block.
func vaultTamperAlerts(raise func(monitor.Alert), now func() time.Time) func(exchange, name string, err error) {
	var mu sync.Mutex
	last := map[string]time.Time{}
	return func(exchange, name string, err error) {
		subject := "key:" + exchange + "/" + name
		t := now()
		mu.Lock()
		if prev, ok := last[subject]; ok && t.Sub(prev) < vaultTamperEvery {
			mu.Unlock()
			return
		}
		last[subject] = t
		mu.Unlock()
		raise(monitor.Alert{Rule: ruleVaultTamper, Severity: monitor.SeverityCritical, Subject: subject,
			Summary:  "the vault refused exchange key " + exchange + "/" + name + " as tampered with or rolled back; requests that need it fail until the stored key is restored or replaced",
			Evidence: map[string]string{"error": err.Error()}, Time: t})
	}
}
