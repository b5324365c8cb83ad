package main

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

// adminReports serves the admin API's compliance report from what serve
// already knows: the vault's keys, the findings of the latest scheduled
// posture run (the lifecycle checks for keys it did not cover), rotations
// and revocations. It asks no venue and adds no history snapshot.
type adminReports struct {
	v       *vault.Vault
	st      store.Store
	pol     posture.Policy
	history *posture.History
}

func (r *adminReports) Compliance(ctx context.Context, format string, inScope func(venue, name string) bool) ([]byte, error) {
	all, err := r.v.Keys(ctx)
	if err != nil {
		return nil, err
	}
	keys := slices.DeleteFunc(all, func(k vault.KeyInfo) bool { return !inScope(k.Exchange, k.Name) })
	now := time.Now().UTC()
	runs, err := r.history.Runs(ctx, 1)
	if err != nil {
		return nil, err
	}
	checked, findings := map[string]bool{}, map[string][]posture.Finding{}
	if len(runs) > 0 {
		for _, k := range runs[0].Keys {
			checked[k] = true
		}
		for _, f := range runs[0].Findings {
			findings[f.Key] = append(findings[f.Key], f)
		}
	}
	rep := &posture.Report{Generated: now, Policy: posture.NewPolicyInfo(r.pol)}
	for _, k := range keys {
		e := posture.KeyEntry{Key: k, Status: "active"}
		switch {
		case !k.Disabled.IsZero():
			e.Status = "revoked"
		case checked[k.ID()]:
			e.Findings = findings[k.ID()]
		default:
			e.Findings = posture.Lifecycle(k, r.pol, now)
		}
		rep.Keys = append(rep.Keys, e)
	}
	if err := addLifecycle(ctx, rep, r.v, r.st, keys, r.pol, now, false); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := rep.Render(&b, format); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
