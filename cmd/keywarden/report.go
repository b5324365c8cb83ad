package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/rotation"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

func newReportCmd(a *app) *cobra.Command {
	cmd := group("report", "Reports on keys and their posture")
	cmd.AddCommand(newReportComplianceCmd(a))
	return cmd
}

// historyPrefix holds one finding-count snapshot per compliance report.
const historyPrefix = "posture/history/"

// maxHistory bounds the snapshots a report shows.
const maxHistory = 365

func newReportComplianceCmd(a *app) *cobra.Command {
	var format string
	var offline bool
	var pf postureFlags
	cmd := &cobra.Command{
		Use:   "compliance [--format md|html|json]",
		Short: "Key inventory, permissions, IP restrictions, ages, rotations, revocations and their history",
		Long: `Write a compliance report to stdout: every key with its declared scopes,
the permissions and IP allowlist its venue reports (unless --offline), its
age and last use, rotations done and due, revocations, unused keys, and the
finding counts of earlier reports. Each run adds a snapshot to that history.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "md", "html", "json":
			default:
				return fmt.Errorf("unknown format %q (want md, html or json)", format)
			}
			ctx := cmd.Context()
			v, db, err := a.unsealedVault(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			st, ok := db.(store.Store)
			if !ok {
				return errors.New("report: the data store is not a store")
			}
			keys, err := v.Keys(ctx)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			pol := pf.policy()
			rep := &posture.Report{Generated: now, Policy: posture.NewPolicyInfo(pol)}
			if offline {
				for _, k := range keys {
					e := posture.KeyEntry{Key: k, Status: "active"}
					if !k.Disabled.IsZero() {
						e.Status = "revoked"
					} else {
						e.Findings = posture.Lifecycle(k, pol, now)
					}
					rep.Keys = append(rep.Keys, e)
				}
			} else {
				rep.Keys = a.auditKeys(ctx, v, keys, pol, now)
			}
			if err := addLifecycle(ctx, rep, v, st, keys, pol, now, true); err != nil {
				return err
			}
			return rep.Render(a.stdout, format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "md", "md, html or json")
	cmd.Flags().BoolVar(&offline, "offline", false, "do not ask the venues; report the vault's metadata only")
	pf.add(cmd)
	return cmd
}

// saveHistory stores snap and returns the latest snapshots, oldest first.
func saveHistory(ctx context.Context, st store.Store, snap posture.Snapshot) ([]posture.Snapshot, error) {
	b, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	if err := st.Put(ctx, fmt.Sprintf("%s%020d", historyPrefix, snap.Time.UnixNano()), b); err != nil {
		return nil, fmt.Errorf("report history: %w", err)
	}
	return loadHistory(ctx, st)
}

// loadHistory returns the latest snapshots, oldest first.
func loadHistory(ctx context.Context, st store.Store) ([]posture.Snapshot, error) {
	names, err := st.List(ctx, historyPrefix)
	if err != nil {
		return nil, fmt.Errorf("report history: %w", err)
	}
	slices.Sort(names)
	if len(names) > maxHistory {
		names = names[len(names)-maxHistory:]
	}
	var out []posture.Snapshot
	for _, n := range names {
		b, err := st.Get(ctx, n)
		if err != nil {
			continue
		}
		var s posture.Snapshot
		if json.Unmarshal(b, &s) == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// addLifecycle completes rep with the revocations, the rotations done, due
// and in progress of keys, and the finding-count history. With save set the
// report adds its own snapshot to that history first.
func addLifecycle(ctx context.Context, rep *posture.Report, v *vault.Vault, st store.Store, keys []vault.KeyInfo, pol posture.Policy, now time.Time, save bool) error {
	for _, k := range keys {
		if !k.Disabled.IsZero() {
			rep.Revocations = append(rep.Revocations, posture.Event{Key: k.ID(), Time: k.Disabled, Kind: "revoked", Reason: k.DisabledReason})
			continue
		}
		if !k.Rotated.Equal(k.Created) {
			rep.Rotations = append(rep.Rotations, posture.Event{Key: k.ID(), Time: k.Rotated, Kind: "rotated"})
		}
		born := k.Rotated
		if born.IsZero() {
			born = k.Created
		}
		if pol.MaxAge > 0 {
			rep.Rotations = append(rep.Rotations, posture.Event{Key: k.ID(), Time: born.Add(pol.MaxAge), Kind: "rotation-due"})
		}
	}
	r, err := rotation.New(rotation.Options{Store: st, Vault: v, Audit: discardAuditor{}})
	listed := map[string]bool{}
	for _, k := range keys {
		listed[k.ID()] = true
	}
	if err != nil {
		return err
	}
	rots, err := r.List(ctx)
	if err != nil {
		return err
	}
	for _, s := range rots {
		if s.Step != rotation.StepDone && listed[s.ID()] {
			rep.Rotations = append(rep.Rotations, posture.Event{Key: s.ID(), Time: s.Updated, Kind: "rotation-in-progress", Reason: string(s.Step)})
		}
	}
	slices.SortStableFunc(rep.Rotations, func(x, y posture.Event) int { return x.Time.Compare(y.Time) })
	if save {
		rep.History, err = saveHistory(ctx, st, posture.Snapshot{Time: now, Counts: rep.Counts()})
	} else {
		rep.History, err = loadHistory(ctx, st)
	}
	return err
}

// discardAuditor is the rotation auditor of code that only lists rotations.
type discardAuditor struct{}

func (discardAuditor) Record(context.Context, string, string, string) error { return nil }
