package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// diskFull makes every segment file written through it fail with ENOSPC
// while on, across the files Reopen wraps anew.
type diskFull struct {
	mu    sync.Mutex
	on    bool
	tries chan struct{} // one send per refused write, when there is room
}

func (d *diskFull) set(on bool) { d.mu.Lock(); d.on = on; d.mu.Unlock() }

func (d *diskFull) wrap(f File) File { return &diskFullFile{File: f, d: d} }

type diskFullFile struct {
	File
	d *diskFull
}

func (f *diskFullFile) Write(b []byte) (int, error) {
	f.d.mu.Lock()
	on := f.d.on
	f.d.mu.Unlock()
	if on {
		select {
		case f.d.tries <- struct{}{}:
		default:
		}
		n, _ := f.File.Write(b[:len(b)/3]) // torn
		return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return f.File.Write(b)
}

// waitHealth waits for the next OnHealth call, for at most a minute (a
// bound on a hung test, not a timing assertion).
func waitHealth(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(time.Minute):
		t.Fatal("no health change within a minute")
		return nil
	}
}

// TestRecoverAfterDiskFull: a full disk puts the log into its failed state
// (alert raised); requests meanwhile are refused; once a write and flush
// work again the log resumes on its own (alert cleared) with the chain
// whole, every acknowledged record intact and no refused record in it.
func TestRecoverAfterDiskFull(t *testing.T) {
	dir := t.TempDir()
	d := &diskFull{tries: make(chan struct{}, 1)}
	health := make(chan error, 16)
	l := openTest(t, Options{Dir: dir, RetryInterval: time.Millisecond, WrapFile: d.wrap,
		OnHealth: func(err error) { health <- err }})
	var acked []Receipt
	for i := range 5 {
		acked = append(acked, mustAppend(t, l, intentRecord(i)))
	}
	d.set(true)
	if _, err := l.Append(context.Background(), intentRecord(100)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append on a full disk = %v, want ErrUnavailable", err)
	}
	if err := waitHealth(t, health); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("alert on failure = %v, want the ENOSPC cause", err)
	}
	// The log keeps probing, and keeps failing, while the disk is full.
	for range 3 {
		select {
		case <-d.tries:
		case <-time.After(time.Minute):
			t.Fatal("the failed log does not probe for space")
		}
	}
	for i := range 3 {
		if _, err := l.Append(context.Background(), intentRecord(200+i)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Append while the disk is still full = %v, want ErrUnavailable", err)
		}
	}
	if err := l.Healthy(); err == nil {
		t.Error("Healthy on a full disk = nil")
	}
	d.set(false)
	if err := waitHealth(t, health); err != nil {
		t.Fatalf("health change after space came back = %v, want nil (recovered)", err)
	}
	rc := mustAppend(t, l, intentRecord(300))
	if rc.Seq <= acked[len(acked)-1].Seq {
		t.Errorf("seq after recovery = %d, want after %d", rc.Seq, acked[len(acked)-1].Seq)
	}
	l.Close()
	if _, err := Verify(dir, testPub()); err != nil {
		t.Fatalf("Verify after recovery = %v", err)
	}
	bySeq := map[uint64]Record{}
	for _, r := range readAll(t, dir) {
		bySeq[r.Seq] = r
		if r.Intent != nil {
			switch r.RequestID {
			case "req-100", "req-200", "req-201", "req-202":
				t.Errorf("refused record %s is in the chain", r.RequestID)
			}
		}
	}
	for _, a := range acked {
		if bySeq[a.Seq].Hash != a.Hash {
			t.Errorf("acknowledged record %d changed or lost", a.Seq)
		}
	}
	if bySeq[rc.Seq].RequestID != "req-300" {
		t.Errorf("record after recovery missing")
	}
	// The outage is in the chain, right after the last acknowledged record.
	ev := bySeq[acked[len(acked)-1].Seq+1].Event
	if ev == nil || ev.Kind != EventRecovered || ev.Detail["failed_at"] == "" || !strings.Contains(ev.Detail["cause"], "no space left") {
		t.Errorf("record after the last acknowledged one = %+v, want the %s event with the cause", bySeq[acked[len(acked)-1].Seq+1], EventRecovered)
	}
}

// TestRecoverAfterDiskFullTmpfs fills a real 2 MiB tmpfs (needs root, or
// CAP_SYS_ADMIN, to mount it): the log fails on ENOSPC, probes, and resumes
// once a file taking space is removed.
func TestRecoverAfterDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	health := make(chan error, 16)
	l := openTest(t, Options{Dir: dir, RetryInterval: time.Millisecond,
		OnHealth: func(err error) { health <- err }})
	var acked []Receipt
	var failedAt int
	for i := range 100_000 { // bounded: 2 MiB hold fewer than 10k records
		rc, err := l.Append(context.Background(), intentRecord(i))
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Append on a full disk = %v, want ErrUnavailable", err)
			}
			failedAt = i
			break
		}
		acked = append(acked, rc)
	}
	if failedAt == 0 {
		t.Fatal("the tmpfs never filled up")
	}
	if err := waitHealth(t, health); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("alert on failure = %v, want ENOSPC", err)
	}
	if _, err := l.Append(context.Background(), intentRecord(-1)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append while full = %v, want ErrUnavailable", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := waitHealth(t, health); err != nil {
		t.Fatalf("health change after space came back = %v, want nil", err)
	}
	for i := range 20 {
		acked = append(acked, mustAppend(t, l, intentRecord(1_000_000+i)))
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatalf("Verify after recovery = %v", err)
	}
	bySeq := map[uint64]string{}
	for _, r := range readAll(t, dir) {
		bySeq[r.Seq] = r.Hash
		if r.RequestID == "req--1" || r.RequestID == fmt.Sprintf("req-%d", failedAt) {
			t.Errorf("refused record %s is in the chain", r.RequestID)
		}
	}
	for _, a := range acked {
		if bySeq[a.Seq] != a.Hash {
			t.Fatalf("acknowledged record %d changed or lost (%s)", a.Seq, rep)
		}
	}
	t.Logf("filled after %d records; %s", failedAt, rep)
}
