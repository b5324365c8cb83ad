package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/server"
)

func newAuditCmd(a *app) *cobra.Command {
	cmd := group("audit", "Verify, search and export the audit log")
	cmd.AddCommand(newAuditVerifyCmd(a), newAuditSearchCmd(a), newAuditExportCmd(a), newAuditPublicKeyCmd(a), newAuditCheckpointsCmd(a), newAuditProveCmd(a))
	return cmd
}

func (a *app) auditDir() string { return a.cfg.Gateway.withDefaults(a.cfg.DataDir).AuditDir }

// auditKey returns the checkpoint public key: the pinned one given, or the
// one sealed in the vault (which unseals it for this process).
func (a *app) auditKey(cmd *cobra.Command, pinned string) (ed25519.PublicKey, error) {
	if pinned != "" {
		return parsePublicKey(pinned)
	}
	ctx := cmd.Context()
	v, db, err := openVault(ctx, &a.cfg, a.log)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := unsealFromConfig(ctx, v, &a.cfg, a.prompt); err != nil {
		return nil, err
	}
	defer v.Seal()
	return server.AuditPublicKey(ctx, v)
}

func parsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if b, err := os.ReadFile(s); err == nil {
		s = strings.TrimSpace(string(b))
	}
	for _, dec := range []func(string) ([]byte, error){base64.StdEncoding.DecodeString, hex.DecodeString} {
		if b, err := dec(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, errors.New("public key: want 32 bytes of Ed25519 public key, base64 or hex, or a file holding it")
}

func newAuditVerifyCmd(a *app) *cobra.Command {
	var pinned, witness string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain and signed checkpoints",
		Long: `verify checks every record's hash, the chain links, sequence numbers and the
signed checkpoints, and names the first bad record. It recomputes the Merkle
tree over the records, checks each checkpoint's root and note signature,
and proves each Merkle checkpoint consistent with the one before. With
--witness it also checks the log against checkpoints exported earlier
(keywarden audit checkpoints, or serve's audit_witness_file), which detects
truncation and rollback, and names any tree size for which the witness and
the log (or the witness file itself) hold two different roots (a fork: an
old state restored and written on).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := a.auditKey(cmd, pinned)
			if err != nil {
				return err
			}
			var rep audit.Report
			if witness != "" {
				// Every tree size the witness holds, against the log's
				// root and head at that size: a fork is named by its two
				// roots, a log behind its witness as a rollback.
				var w *audit.Witness
				w, err = audit.OpenWitness(witness, a.auditDir(), pub)
				if err == nil {
					err = w.Check(audit.ToEnd)
				}
				if err != nil {
					return fmt.Errorf("audit verify: %w", err)
				}
				rep, err = audit.VerifyWithWitness(a.auditDir(), pub, witness)
			} else {
				rep, err = audit.Verify(a.auditDir(), pub)
			}
			if err != nil {
				return fmt.Errorf("audit verify: %w", err)
			}
			fmt.Fprintf(a.stdout, "audit log %s: OK — %d records (seq %d–%d) in %d segments, %d signed checkpoints, head %s\n",
				a.auditDir(), rep.Records, rep.FirstSeq, rep.LastSeq, rep.Segments, rep.Checkpoints, rep.Head)
			if rep.MerkleCheckpoints > 0 {
				fmt.Fprintf(a.stdout, "Merkle: %d checkpoints, %d consecutive pairs proved consistent, tree size %d, root %s\n",
					rep.MerkleCheckpoints, rep.Consistency, rep.TreeSize, rep.Root)
			}
			if witness != "" {
				fmt.Fprintf(a.stdout, "witness %s: %d checkpoints match the log, no fork\n", witness, rep.Witnessed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pinned, "public-key", "", "checkpoint public key (base64, hex or a file); default: from the vault")
	cmd.Flags().StringVar(&witness, "witness", "", "checkpoints exported earlier, to detect truncation")
	return cmd
}

type auditFilterFlags struct {
	from, to, client, key, venue, scope, decision, request string
}

func (f *auditFilterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "start time (RFC 3339, or a duration ago like 24h)")
	fl.StringVar(&f.to, "to", "", "end time (RFC 3339, or a duration ago)")
	fl.StringVar(&f.client, "client", "", "client credential id")
	fl.StringVar(&f.key, "key", "", "exchange key name")
	fl.StringVar(&f.venue, "venue", "", "venue")
	fl.StringVar(&f.scope, "scope", "", "scope: read, trade, transfer, withdraw, account-admin")
	fl.StringVar(&f.decision, "decision", "", "allow or deny")
	fl.StringVar(&f.request, "request-id", "", "request id")
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 or a duration like 24h", s)
	}
	return t, nil
}

func (f *auditFilterFlags) filter() (audit.Filter, error) {
	now := time.Now()
	from, err := parseWhen(f.from, now)
	if err != nil {
		return audit.Filter{}, err
	}
	to, err := parseWhen(f.to, now)
	if err != nil {
		return audit.Filter{}, err
	}
	return audit.Filter{From: from, To: to, Client: f.client, Key: f.key, Venue: f.venue, Scope: f.scope,
		Decision: f.decision, RequestID: f.request}, nil
}

func newAuditSearchCmd(a *app) *cobra.Command {
	var f auditFilterFlags
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Show audit records matching filters",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flt, err := f.filter()
			if err != nil {
				return err
			}
			n := 0
			for r, err := range audit.Search(a.auditDir(), flt) {
				if err != nil {
					return fmt.Errorf("audit search: %w", err)
				}
				n++
				fmt.Fprintln(a.stdout, describeRecord(r))
			}
			fmt.Fprintf(a.stderr, "%d records\n", n)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

// describeRecord is one human line per record.
func describeRecord(r audit.Record) string {
	head := fmt.Sprintf("#%d %s %-10s", r.Seq, r.Time.UTC().Format(time.RFC3339Nano), r.Type)
	switch {
	case r.Intent != nil:
		in := r.Intent
		s := fmt.Sprintf("%s %s %s %s client=%s key=%s from=%s %s", head, r.RequestID, in.Method, in.Path, in.Client, in.Key, in.SourceIP, in.Decision)
		if in.Rule != "" {
			s += " rule=" + in.Rule + ": " + in.Reason
		}
		return s
	case r.Outcome != nil:
		o := r.Outcome
		s := fmt.Sprintf("%s %s status=%d latency=%dµs", head, r.RequestID, o.Status, o.LatencyMicros)
		if o.VenueOrderID != "" {
			s += " order=" + o.VenueOrderID
		}
		if o.Error != "" {
			s += " error=" + o.Error
		}
		return s
	case r.Event != nil:
		b, _ := json.Marshal(r.Event.Detail)
		return fmt.Sprintf("%s %s actor=%s %s", head, r.Event.Kind, r.Event.Actor, b)
	case r.Checkpoint != nil:
		return fmt.Sprintf("%s count=%d head=%s", head, r.Checkpoint.Count, r.Checkpoint.Head)
	}
	return head
}

func newAuditExportCmd(a *app) *cobra.Command {
	var f auditFilterFlags
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write matching audit records as JSON Lines to stdout",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flt, err := f.filter()
			if err != nil {
				return err
			}
			return audit.ExportJSONL(a.stdout, a.auditDir(), flt)
		},
	}
	f.add(cmd)
	return cmd
}

func newAuditPublicKeyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "public-key",
		Short: "Print the checkpoint public key (base64), to pin it for verification elsewhere",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := a.auditKey(cmd, "")
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, base64.StdEncoding.EncodeToString(pub))
			return nil
		},
	}
}

func newAuditProveCmd(a *app) *cobra.Command {
	var pinned string
	var seq uint64
	cmd := &cobra.Command{
		Use:   "prove",
		Short: "Print a Merkle inclusion proof of one record against the latest checkpoint",
		Long: `prove verifies the log, then prints an RFC 6962 inclusion proof that record
--record is in the Merkle tree of the latest signed checkpoint: the record's
hash, its leaf hash, the tree size and root, the proof hashes (base64, from
the leaf upwards) and the checkpoint as a C2SP signed note. Anyone holding
the note (or a witness copy of it) and the record can check the proof.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := a.auditKey(cmd, pinned)
			if err != nil {
				return err
			}
			p, err := audit.ProveRecord(a.auditDir(), pub, seq)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "record %d\nrecord hash %s\nleaf index %d\nleaf hash %s\ntree size %d\nroot %s\nproof (%d hashes):\n",
				p.Seq, p.Hash, p.Seq-1, base64.StdEncoding.EncodeToString(p.LeafHash[:]), p.TreeSize,
				base64.StdEncoding.EncodeToString(p.Root[:]), len(p.Proof))
			for _, h := range p.Proof {
				fmt.Fprintf(a.stdout, "  %s\n", base64.StdEncoding.EncodeToString(h[:]))
			}
			fmt.Fprintf(a.stdout, "checkpoint:\n%s", p.Note)
			fmt.Fprintln(a.stderr, "proof verified against the checkpoint root")
			return nil
		},
	}
	cmd.Flags().StringVar(&pinned, "public-key", "", "checkpoint public key (base64, hex or a file); default: from the vault")
	cmd.Flags().Uint64Var(&seq, "record", 0, "sequence number of the record to prove")
	cmd.MarkFlagRequired("record")
	return cmd
}

func newAuditCheckpointsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoints",
		Short: "Write the signed checkpoints to stdout, for an external witness file",
		Long: `checkpoints writes every signed checkpoint, oldest first: a witness line
(chain head) and, for checkpoints with a Merkle root, the C2SP signed
checkpoint note, each followed by a blank line. Append the output to a file
kept off this host and pass it to "keywarden audit verify --witness".`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return audit.ExportCheckpoints(a.auditDir(), a.stdout)
		},
	}
}
