package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/monitor"
)

func TestAuditForkAlert(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fork := &audit.ForkError{TreeSize: 40, Kind: "root", WitnessHash: "aa", LogHash: "bb", WitnessLine: 7}
	inFile := &audit.ForkError{TreeSize: 40, Kind: "root", WitnessHash: "aa", LogHash: "cc", WitnessLine: 9, WitnessFork: true}
	back := &audit.RollbackError{WitnessSize: 40, WitnessHash: "aa", WitnessLine: 7, LogSize: 15, LogRoot: "dd"}
	other := errors.New("audit: witness: /w does not exist")
	tests := []struct {
		name string
		err  error
		want monitor.Alert
	}{
		{"fork", fmt.Errorf("audit witness /w: %w", fork), monitor.Alert{
			Summary: "audit log fork: two different Merkle roots for tree size 40; keywarden stops",
			Evidence: map[string]string{"kind": "fork", "tree_size": "40", "witness_root": "aa", "log_root": "bb",
				"witness_line": "7", "witness_file": "/w", "error": "audit witness /w: " + fork.Error()}}},
		{"fork in the file", inFile, monitor.Alert{
			Summary: "audit log fork: two different Merkle roots for tree size 40; keywarden stops",
			Evidence: map[string]string{"kind": "fork in the witness file", "tree_size": "40", "witness_root": "aa", "other_root": "cc",
				"witness_line": "9", "witness_file": "/w", "error": inFile.Error()}}},
		{"rollback", back, monitor.Alert{
			Summary: "audit log rollback: the witness holds tree size 40, the log ends at 15; keywarden stops",
			Evidence: map[string]string{"kind": "rollback", "tree_size": "40", "log_tree_size": "15", "witness_root": "aa", "log_root": "dd",
				"witness_file": "/w", "error": back.Error()}}},
		{"unreadable witness", other, monitor.Alert{
			Summary:  "the audit witness cannot be checked: keywarden stops rather than run unwitnessed",
			Evidence: map[string]string{"witness_file": "/w", "error": other.Error()}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Rule, want.Severity, want.Subject, want.Time = ruleAuditFork, monitor.SeverityCritical, "audit", now
			if diff := cmp.Diff(want, auditForkAlert(tt.err, "/w", now)); diff != "" {
				t.Errorf("alert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckWitnessPlace(t *testing.T) {
	tests := []struct {
		witness, auditDir string
		ok                bool
	}{
		{"", "/data/audit", true},
		{"/mnt/witness/keywarden", "/data/audit", true},
		{"/data/audit-witness", "/data/audit", true},
		{"/data/audit/witness", "/data/audit", false},
		{"/data/audit/sub/../witness", "/data/audit", false},
		{"/data/audit/..witness", "/data/audit", false},
	}
	for _, tt := range tests {
		err := checkWitnessPlace(GatewayConfig{AuditWitnessFile: tt.witness, AuditDir: tt.auditDir})
		if (err == nil) != tt.ok {
			t.Errorf("checkWitnessPlace(%q in %q) = %v, want ok %v", tt.witness, tt.auditDir, err, tt.ok)
		}
	}
}

func TestWitnessConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keywarden.toml")
	writeFile(t, path, "[gateway]\naudit_witness_file = \"witness/audit.witness\"\n", 0o600)
	cfg, err := loadConfig(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Gateway.AuditWitnessFile, filepath.Join(dir, "witness", "audit.witness"); got != want {
		t.Errorf("audit_witness_file = %q, want %q (relative to the config file)", got, want)
	}
	cfg.Gateway.AuditWitnessFile = filepath.Join(cfg.DataDir, "audit", "w")
	if err := validateGateway(&cfg); err == nil || !strings.Contains(err.Error(), "audit_witness_file") {
		t.Errorf("validateGateway(witness in the audit directory) = %v, want an error naming audit_witness_file", err)
	}
}
