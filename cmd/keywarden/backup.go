package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/store"
)

// A backup file holds every record of the store exactly as it is at rest:
// exchange secrets, client secrets and the keyring sealed by the vault,
// and metadata. The vault is never unsealed to make or restore one, so a
// backup holds nothing a copy of the database would not; it is still
// protected like one (mode 0600), because sealed records are what an
// attacker with the passphrase would need.
//
// Format: JSON lines. The first is the header, then one line per record,
// then a trailer with the SHA-256 of every byte before it.
const backupFormat = "keywarden-backup"

type backupHeader struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Driver  string    `json:"driver"`
	Records int       `json:"records"`
}

type backupRecord struct {
	Key string `json:"k"`
	Val string `json:"v"` // base64
}

type backupTrailer struct {
	SHA256 string `json:"sha256"`
}

func newBackupCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write every stored record, sealed as at rest, to a backup file",
		Long: `backup copies the store (SQLite or PostgreSQL) to FILE (created with mode
0600; an existing file is refused). Records are copied as they are at rest:
secrets stay sealed by the vault, which is not unsealed. The copy is taken in
one transaction, so it is consistent. The audit log is not in the store: back
up the audit directory with the data directory's file tools.

With SQLite, stop keywarden serve first (it holds the data directory).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("backup: --out is required")
			}
			db, err := openStore(cmd.Context(), &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := writeBackup(cmd.Context(), db, a.cfg.Store.driver(), out, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Backed up %d records to %s.\n", n, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "backup file to create")
	return cmd
}

func newRestoreCmd(a *app) *cobra.Command {
	var in string
	cmd := &cobra.Command{
		Use:   "restore --in FILE",
		Short: "Restore a backup into an empty store",
		Long: `restore checks FILE's checksum and writes its records, in one transaction,
into the configured store, which must be empty (a new data directory or a new
PostgreSQL database). A backup from SQLite restores into PostgreSQL and back.
Unseal with the passphrase or shares that sealed the vault when the backup
was made.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return errors.New("restore: --in is required")
			}
			recs, err := readBackup(in)
			if err != nil {
				return err
			}
			db, err := openStore(cmd.Context(), &a.cfg, a.log)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := restoreRecords(cmd.Context(), db, recs); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Restored %d records into the %s store.\n", len(recs), a.cfg.Store.driver())
			return nil
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "backup file to read")
	return cmd
}

// writeBackup writes every record of db to path, which must not exist.
func writeBackup(ctx context.Context, db dataStore, driver, path string, now time.Time) (int, error) {
	var recs []backupRecord
	err := db.Update(ctx, func(tx store.Tx) error {
		keys, err := tx.List(ctx, "")
		if err != nil {
			return err
		}
		for _, k := range keys {
			v, err := tx.Get(ctx, k)
			if err != nil {
				return err
			}
			recs = append(recs, backupRecord{Key: k, Val: base64.StdEncoding.EncodeToString(v)})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("backup: read store: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(backupHeader{Format: backupFormat, Version: 1, Created: now.UTC(), Driver: driver, Records: len(recs)}); err != nil {
		return 0, err
	}
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return 0, err
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	if err := enc.Encode(backupTrailer{SHA256: hex.EncodeToString(sum[:])}); err != nil {
		return 0, err
	}
	if err := writeNewFile(path, buf.Bytes()); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return len(recs), nil
}

// writeNewFile creates path (mode 0600, refusing an existing file) with
// data, synced, through a temporary file in the same directory.
func writeNewFile(path string, data []byte) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".keywarden-backup-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Link, unlike rename, refuses to replace a file created meanwhile.
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// maxBackupLine bounds one line of a backup file (one record).
const maxBackupLine = 64 << 20

// readBackup reads and checks a backup file.
func readBackup(path string) ([]backupRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	h := sha256.New()
	var lines [][]byte
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > maxBackupLine {
			return nil, errors.New("restore: a line of the backup is too long")
		}
		if len(line) > 0 {
			lines = append(lines, line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if len(lines) < 2 {
		return nil, errors.New("restore: not a keywarden backup (too short)")
	}
	for _, l := range lines[:len(lines)-1] {
		h.Write(l)
	}
	var tr backupTrailer
	if err := strictJSON(lines[len(lines)-1], &tr); err != nil || tr.SHA256 != hex.EncodeToString(h.Sum(nil)) {
		return nil, errors.New("restore: the backup's checksum does not match: the file is truncated or damaged")
	}
	var hd backupHeader
	if err := strictJSON(lines[0], &hd); err != nil || hd.Format != backupFormat {
		return nil, errors.New("restore: not a keywarden backup")
	}
	if hd.Version != 1 {
		return nil, fmt.Errorf("restore: backup version %d is newer than this keywarden knows (1)", hd.Version)
	}
	body := lines[1 : len(lines)-1]
	if len(body) != hd.Records {
		return nil, fmt.Errorf("restore: the backup holds %d records, its header says %d", len(body), hd.Records)
	}
	recs := make([]backupRecord, 0, len(body))
	for i, l := range body {
		var rec backupRecord
		if err := strictJSON(l, &rec); err != nil || rec.Key == "" {
			return nil, fmt.Errorf("restore: record %d is malformed", i+1)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// restoreRecords writes recs into db in one transaction, refusing a store
// that already holds records.
func restoreRecords(ctx context.Context, db dataStore, recs []backupRecord) error {
	return db.Update(ctx, func(tx store.Tx) error {
		keys, err := tx.List(ctx, "")
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if len(keys) > 0 {
			return fmt.Errorf("restore: the store already holds %d records; restore into a new data directory or an empty database", len(keys))
		}
		for _, r := range recs {
			v, err := base64.StdEncoding.DecodeString(r.Val)
			if err != nil {
				return fmt.Errorf("restore: record %s is not valid base64", r.Key)
			}
			if err := tx.Create(ctx, r.Key, v); err != nil {
				return fmt.Errorf("restore: %s: %w", r.Key, err)
			}
		}
		return nil
	})
}
