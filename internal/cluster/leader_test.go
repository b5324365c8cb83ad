package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

// leaders tracks which electors lead.
type leaders struct {
	mu      sync.Mutex
	leading map[string]bool
}

func (l *leaders) set(name string, v bool) {
	l.mu.Lock()
	l.leading[name] = v
	l.mu.Unlock()
}

func (l *leaders) current() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for n, v := range l.leading {
		if v {
			out = append(out, n)
		}
	}
	return out
}

// startElector runs Lead for "scheduler" until the test ends; while it
// leads, its fn marks it in ls.
func startElector(t *testing.T, db *postgres.DB, name string, ls *leaders) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Lead(ctx, LeaderOptions{DB: db, Name: "scheduler", Replica: name, Check: 100 * time.Millisecond},
			func(ctx context.Context) {
				ls.set(name, true)
				<-ctx.Done()
				ls.set(name, false)
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Lead(%s) = %v", name, err)
		}
	})
}

// TestLeaderFailover runs three electors: exactly one leads; when its lock
// connection is terminated, it steps down and another takes over.
func TestLeaderFailover(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ls := &leaders{leading: map[string]bool{}}
	for _, n := range []string{"a", "b", "c"} {
		startElector(t, openDB(t, dsn), n, ls)
	}
	waitFor(t, "a leader", func() bool { return len(ls.current()) == 1 })
	// Steady state: still exactly one after several check intervals.
	time.Sleep(500 * time.Millisecond)
	first := ls.current()
	if len(first) != 1 {
		t.Fatalf("leaders = %v, want exactly one", first)
	}
	admin := openDB(t, dsn)
	var killed int
	// pg_locks covers the whole cluster: other tests' databases, running at
	// the same time, have "scheduler" leaders of their own.
	err := admin.Pool().QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		postgres.LockClass, uint32(lockID("scheduler"))).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d lock holders, %v, want 1", killed, err)
	}
	took := waitFor(t, "a new leader", func() bool {
		cur := ls.current()
		return len(cur) == 1 && cur[0] != first[0]
	})
	t.Logf("leader %s lost its connection; %v took over after %s (check interval 100ms)", first[0], ls.current(), took)
}

// TestLeaderChildProcess is not a test on its own: the failover test runs
// the test binary again with KEYWARDEN_LEADER_CHILD set, and this leads
// until the process is killed.
func TestLeaderChildProcess(t *testing.T) {
	dsn := os.Getenv("KEYWARDEN_LEADER_CHILD")
	if dsn == "" {
		t.Skip("helper process for TestLeaderFailoverKilledProcess")
	}
	db, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	_ = Lead(context.Background(), LeaderOptions{DB: db, Name: "scheduler", Check: 100 * time.Millisecond},
		func(ctx context.Context) {
			fmt.Println("LEADER")
			<-ctx.Done()
		})
}

// TestLeaderFailoverKilledProcess kills (SIGKILL) a leader running in
// another process: this process takes over once the server has dropped the
// dead session's lock.
func TestLeaderFailoverKilledProcess(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeaderChildProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "KEYWARDEN_LEADER_CHILD="+dsn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	leading := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "LEADER" {
				close(leading)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-leading:
	case <-time.After(hangBound):
		t.Fatal("child process never led")
	}
	ls := &leaders{leading: map[string]bool{}}
	startElector(t, openDB(t, dsn), "parent", ls)
	time.Sleep(500 * time.Millisecond)
	if cur := ls.current(); len(cur) != 0 {
		t.Fatalf("leaders while the child leads = %v, want none here", cur)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "takeover after the leader was killed", func() bool { return len(ls.current()) == 1 })
	t.Logf("leader process killed; this process led after %s (check interval 100ms)", took)
}
