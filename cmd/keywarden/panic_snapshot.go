package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/incident"
)

// evidenceDir is where keywarden serve writes the signed evidence snapshot
// of each panic, in the data directory.
const evidenceDir = "evidence"

// onPanic is the incident manager's panic hook: the snapshot is written in
// the background, so the audit delivery never waits for it. A stop through
// the admin API (or the dashboard) that asked for venue actions runs them
// here, from its audit record, as "keywarden panic --all" would.
func (s *serveIncidents) onPanic(in incident.Incident, e incident.Entry, event string) {
	s.a.bg.Go(func() { s.snapshot(in.ID, e.AuditSeq) })
	cancelOrders, deleteKeys := e.Evidence["cancel_orders"] == "true", e.Evidence["delete_keys"] == "true"
	if event != "admin.gateway.stop" || !(cancelOrders || deleteKeys) {
		return
	}
	srv := s.srv.Load()
	if srv == nil {
		s.a.log.Error("panic: venue actions of an admin stop not started: the server is not running yet")
		return
	}
	reason := e.Evidence["reason"]
	if reason == "" {
		reason = "gateway stopped through the admin API"
	}
	req := panicRequest{All: true, Reason: reason, CancelOrders: cancelOrders, DeleteKeys: deleteKeys}
	if _, err := s.a.startVenueActions(context.Background(), srv, req, "admin:"+e.Actor, e.AuditSeq); err != nil {
		s.a.log.Error("panic: venue actions of an admin stop not started", "err", err)
	}
}

// snapshot writes the signed evidence bundle of incident id as it stands
// right after the panic (audit seq) and notes where on its timeline.
func (s *serveIncidents) snapshot(id string, seq uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path, sum, err := s.writeSnapshot(ctx, id, seq)
	text := "evidence snapshot of the panic: " + path + " (sha256 " + sum + "), signed with the evidence key; check it with keywarden incident verify-bundle"
	if err != nil {
		s.a.log.Error("panic: evidence snapshot not written", "incident", id, "err", err)
		text = "evidence snapshot of the panic FAILED: " + err.Error()
	}
	if _, err := s.mgr.Note(ctx, id, "keywarden", text); err != nil {
		s.a.log.Error("panic: evidence snapshot not noted on the incident", "incident", id, "err", err)
	}
}

func (s *serveIncidents) writeSnapshot(ctx context.Context, id string, seq uint64) (string, string, error) {
	in, err := s.mgr.Get(ctx, id)
	if err != nil {
		return "", "", err
	}
	ev, err := s.evidence(ctx)
	defer clear(ev.SignKey)
	if err != nil {
		return "", "", err
	}
	var buf bytes.Buffer
	if _, err := incident.Export(&buf, in, ev); err != nil {
		return "", "", err
	}
	dir := filepath.Join(s.a.cfg.DataDir, evidenceDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	path := filepath.Join(dir, id+"-panic-"+strconv.FormatUint(seq, 10)+".tar.gz")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("evidence snapshot: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return path, hex.EncodeToString(sum[:]), nil
}
