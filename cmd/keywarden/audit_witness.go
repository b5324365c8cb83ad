package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/vault"
)

// ruleAuditFork names the alert for an audit log that disagrees with its
// witness: two roots for one tree size, or a witness ahead of the log.
const ruleAuditFork = "audit_fork"

// auditForkAlert is the critical alert for err (an audit.ForkError or
// RollbackError, or a witness that cannot be read or written). Its
// evidence holds tree sizes and hashes, nothing secret.
func auditForkAlert(err error, file string, now time.Time) monitor.Alert {
	ev := map[string]string{"witness_file": file, "error": err.Error()}
	summary := "the audit witness cannot be checked: keywarden stops rather than run unwitnessed"
	var fe *audit.ForkError
	var re *audit.RollbackError
	switch {
	case errors.As(err, &fe):
		what := "Merkle roots"
		if fe.Kind == "head" {
			what = "chain heads"
		}
		summary = fmt.Sprintf("audit log fork: two different %s for tree size %d; keywarden stops", what, fe.TreeSize)
		ev["kind"], ev["tree_size"] = "fork", strconv.FormatUint(fe.TreeSize, 10)
		ev["witness_"+fe.Kind] = fe.WitnessHash
		ev["log_"+fe.Kind] = fe.LogHash
		ev["witness_line"] = strconv.Itoa(fe.WitnessLine)
		if fe.WitnessFork {
			ev["kind"] = "fork in the witness file"
			delete(ev, "log_"+fe.Kind)
			ev["other_"+fe.Kind] = fe.LogHash
		}
	case errors.As(err, &re):
		summary = fmt.Sprintf("audit log rollback: the witness holds tree size %d, the log ends at %d; keywarden stops", re.WitnessSize, re.LogSize)
		ev["kind"], ev["tree_size"] = "rollback", strconv.FormatUint(re.WitnessSize, 10)
		ev["log_tree_size"] = strconv.FormatUint(re.LogSize, 10)
		ev["witness_root"], ev["log_root"] = re.WitnessHash, re.LogRoot
	}
	return monitor.Alert{Rule: ruleAuditFork, Severity: monitor.SeverityCritical, Subject: "audit",
		Summary: summary, Evidence: ev, Time: now}
}

// auditWitness is serve's live witness: it was checked at start, follows
// the log while serve runs, and appends the final checkpoint at close.
type auditWitness struct {
	w      *audit.Witness
	file   string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	errc   chan error // the error that stopped the follower (buffered, one)
	failed bool
}

// startAuditWitness checks the open log against the witness file configured
// in g (none: nil, nil) and starts following it. When they disagree it
// raises the audit_fork alert through raise and returns the error: serve
// must not start.
func (a *app) startAuditWitness(ctx context.Context, v *vault.Vault, l *audit.Log, g GatewayConfig, raise func(monitor.Alert)) (*auditWitness, error) {
	file := g.AuditWitnessFile
	if file == "" {
		return nil, nil
	}
	pub, err := server.AuditPublicKey(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("audit witness: %w", err)
	}
	w, err := audit.OpenWitness(file, l.Dir(), pub)
	if err == nil {
		err = w.Check(l.Head().Seq)
	}
	if err == nil {
		_, err = w.Export()
	}
	if err != nil {
		if w != nil {
			w.Close()
		}
		raise(auditForkAlert(err, file, time.Now()))
		return nil, fmt.Errorf("audit witness %s: %w", file, err)
	}
	a.log.Info("audit witness checked", "witness_file", file, "tree_size", w.TreeSize(),
		"entries", w.Entries(), "matched", w.Checked())
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	aw := &auditWitness{w: w, file: file, log: a.log, cancel: cancel, done: make(chan struct{}), errc: make(chan error, 1)}
	go func() {
		defer close(aw.done)
		if err := w.Run(wctx, l); err != nil {
			aw.failed = true
			raise(auditForkAlert(err, file, time.Now()))
			aw.errc <- fmt.Errorf("audit witness %s: %w", file, err)
		}
	}()
	return aw, nil
}

// Err delivers the error that stopped the follower; serve then stops. A
// nil *auditWitness never delivers.
func (aw *auditWitness) Err() <-chan error {
	if aw == nil {
		return nil
	}
	return aw.errc
}

// Close stops following; call it after the log is closed, so that the
// log's final checkpoint reaches the witness.
func (aw *auditWitness) Close() error {
	if aw == nil {
		return nil
	}
	aw.cancel()
	<-aw.done
	defer aw.w.Close()
	if aw.failed {
		return nil
	}
	err := aw.w.Follow(audit.ToEnd)
	if err == nil {
		_, err = aw.w.Export()
	}
	if err != nil {
		aw.log.Error("audit witness: the final checkpoint was not appended", "witness_file", aw.file, "err", err)
		return err
	}
	return nil
}

// raiseNow records al as serve's alerts are recorded and delivers it to
// every configured notifier before it returns: an audit_fork alert stops
// serve, and the process may end right after.
func (a *app) raiseNow(record func(monitor.Alert)) func(monitor.Alert) {
	return func(al monitor.Alert) {
		a.log.Error("alert", "alert", al.Rule, "severity", string(al.Severity), "summary", al.Summary)
		if record != nil {
			record(al)
		}
		ns, err := a.cfg.Alerts.notifiers(a.cfg.path)
		if err != nil {
			a.log.Error("alert not delivered", "rule", al.Rule, "err", err)
			return
		}
		for _, n := range ns {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := n.Notify(ctx, al); err != nil {
				a.log.Error("alert not delivered", "rule", al.Rule, "err", err)
			}
			cancel()
		}
	}
}

// checkWitnessPlace refuses a witness file inside the audit directory: a
// backup of the directory would carry the witness with it, and restoring
// both hides the fork.
func checkWitnessPlace(g GatewayConfig) error {
	if g.AuditWitnessFile == "" {
		return nil
	}
	w, err1 := filepath.Abs(g.AuditWitnessFile)
	d, err2 := filepath.Abs(g.AuditDir)
	if err1 != nil || err2 != nil {
		return nil
	}
	if rel, err := filepath.Rel(d, w); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return fmt.Errorf("gateway audit_witness_file %s: inside the audit directory; keep the witness off this host, or at least out of the log's backups", g.AuditWitnessFile)
	}
	return nil
}
