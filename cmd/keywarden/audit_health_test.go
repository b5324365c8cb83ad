package main

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/monitor"
)

func TestAuditHealthAlert(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		err  error
		want monitor.Alert
	}{
		{"failed", errors.Join(errors.New("audit: write"), syscall.ENOSPC), monitor.Alert{
			Rule: ruleAuditHealth, Severity: monitor.SeverityCritical, Subject: "audit",
			Summary:  "the audit log cannot write: every signed request is refused until it recovers",
			Evidence: map[string]string{"error": "audit: write\nno space left on device"}, Time: now}},
		{"recovered", nil, monitor.Alert{
			Rule: ruleAuditHealth, Severity: monitor.SeverityInfo, Subject: "audit",
			Summary: "the audit log has recovered; signed requests are served again", Time: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, auditHealthAlert(tt.err, now)); diff != "" {
				t.Errorf("alert (-want +got):\n%s", diff)
			}
		})
	}
}
