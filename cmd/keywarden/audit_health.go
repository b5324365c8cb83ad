package main

import (
	"time"

	"github.com/keywarden/keywarden/internal/monitor"
)

// ruleAuditHealth names the alerts about the audit log itself.
const ruleAuditHealth = "audit_unavailable"

// auditHealthAlert is the alert for the audit log failing (err set: every
// signed request is refused until it recovers) or recovering (err nil). The
// error names the file system condition (no space, I/O error), never a
// record's content.
func auditHealthAlert(err error, now time.Time) monitor.Alert {
	if err == nil {
		return monitor.Alert{Rule: ruleAuditHealth, Severity: monitor.SeverityInfo, Subject: "audit",
			Summary: "the audit log has recovered; signed requests are served again", Time: now}
	}
	return monitor.Alert{Rule: ruleAuditHealth, Severity: monitor.SeverityCritical, Subject: "audit",
		Summary:  "the audit log cannot write: every signed request is refused until it recovers",
		Evidence: map[string]string{"error": err.Error()}, Time: now}
}
