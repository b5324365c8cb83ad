package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "KEYWARDEN_AUDIT_CRASH_CHILD"

// crashChild appends from many goroutines and prints "seq hash" for every
// acknowledged record, until it is killed (or a bound is reached).
func crashChild(dir string) {
	l, err := Open(Options{Dir: dir, Signer: testKey(), CheckpointEvery: 100, SegmentSize: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	fmt.Println("ready")
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; i < 100_000 && time.Now().Before(deadline); i++ {
				rc, err := l.Append(context.Background(), intentRecord(w*1_000_000+i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				out.Lock()
				fmt.Printf("%d %s\n", rc.Seq, rc.Hash)
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
	}
	os.Exit(m.Run())
}

// TestCrashRecovery kills a child process appending under load at a random
// moment, 50 times, and checks after each restart that every acknowledged
// record is present with its acknowledged hash and the log verifies. While
// the child runs, its checkpoints are exported to a witness file, as an
// operator's witness would; after the restart, the checkpoints exported
// before the crash must still be in the log, and the ones after it must be
// consistent with them (C1 step 5: one Merkle tree, no second root for any
// size).
func TestCrashRecovery(t *testing.T) {
	runs := 50
	if testing.Short() {
		runs = 10
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var total, witnessed int
	for run := range runs {
		dir := filepath.Join(t.TempDir(), "log")
		witness := filepath.Join(t.TempDir(), "witness")
		before := 0 // checkpoints exported while the child ran
		exportLive := func() {
			f, err := os.OpenFile(witness, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var buf strings.Builder
			if err := ExportCheckpoints(dir, &buf); err != nil {
				t.Fatalf("run %d: ExportCheckpoints from the live log = %v", run, err)
			}
			before += strings.Count(buf.String(), witnessTag+" ")
			f.WriteString(buf.String())
		}
		// Every fifth run crashes twice into the same directory, so
		// recovery also runs on a log that was recovered before.
		crashes := 1
		if run%5 == 4 {
			crashes = 2
		}
		acked := map[uint64]string{}
		for range crashes {
			killAfter := time.Duration(10+rng.IntN(90)) * time.Millisecond
			// Every fourth run waits for the export (however slow the
			// child, e.g. under the race detector) and kills killAfter
			// after it; the others export only if the child gets there.
			runCrashChild(t, dir, killAfter, acked, exportLive, run%4 == 1)
		}
		total += len(acked)
		if run%3 == 2 {
			// Power loss can also leave a torn write: part of a record that
			// was never acknowledged, after the last complete line.
			tearTail(t, dir, rng)
		}
		l, err := Open(Options{Dir: dir, Signer: testKey(), CheckpointEvery: 100})
		if err != nil {
			t.Fatalf("run %d: Open after crash = %v", run, err)
		}
		rc, err := l.Append(context.Background(), Record{Event: &Event{Kind: "restart"}})
		if err != nil {
			t.Fatalf("run %d: Append after crash = %v", run, err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("run %d: Close = %v", run, err)
		}
		rep, err := Verify(dir, testPub())
		if err != nil {
			t.Fatalf("run %d: Verify after crash = %v", run, err)
		}
		if rep.LastSeq < rc.Seq {
			t.Errorf("run %d: Verify last seq %d < appended %d", run, rep.LastSeq, rc.Seq)
		}
		if rep.MerkleCheckpoints != rep.Checkpoints || rep.Consistency != max(0, rep.Checkpoints-1) {
			t.Errorf("run %d: %d checkpoints, %d with a Merkle root, %d consistency proofs", run, rep.Checkpoints, rep.MerkleCheckpoints, rep.Consistency)
		}
		if before > 0 {
			// the witness from before the crash, plus what the log
			// exports now: the same tree, no fork
			f, err := os.OpenFile(witness, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := ExportCheckpoints(dir, f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			wrep, err := VerifyWithWitness(dir, testPub(), witness)
			if err != nil {
				t.Fatalf("run %d: checkpoints exported before the crash vs the log after it: %v", run, err)
			}
			if wrep.Witnessed < 2*before {
				t.Errorf("run %d: %d witness checkpoints matched, want at least %d", run, wrep.Witnessed, 2*before)
			}
			witnessed += before
		}
		found := 0
		for r, err := range Search(dir, Filter{}) {
			if err != nil {
				t.Fatalf("run %d: Search = %v", run, err)
			}
			if h, ok := acked[r.Seq]; ok {
				if h != r.Hash {
					t.Errorf("run %d: seq %d hash %s, acknowledged %s", run, r.Seq, r.Hash, h)
				}
				found++
			}
		}
		if found != len(acked) {
			t.Errorf("run %d: %d of %d acknowledged records present after crash", run, found, len(acked))
		}
	}
	t.Logf("%d runs, %d acknowledged records checked, %d checkpoints exported before a crash checked after it", runs, total, witnessed)
	if witnessed == 0 {
		t.Error("no checkpoint was exported before any crash: the witness check never ran")
	}
}

// tearTail appends the first part of a plausible record, without its
// newline, to the last segment.
func tearTail(t *testing.T, dir string, rng *rand.Rand) {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("listSegments = %v, %v", segs, err)
	}
	line, _ := appendLine(nil, 1<<40, time.Now(), []byte(`"type":"event","event":{"kind":"torn"}`), genesisPrev)
	f, err := os.OpenFile(filepath.Join(dir, segs[len(segs)-1]), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(line[:1+rng.IntN(len(line)-2)]); err != nil {
		t.Fatal(err)
	}
}

// runCrashChild starts the child, kills it with SIGKILL killAfter after it
// is ready, and adds every acknowledgement it printed to acked. during, if
// set, runs once while the child is still writing, after its first
// checkpoint was acknowledged; with afterDuring the kill comes killAfter
// after during has run instead (or 8 s after start at the latest).
func runCrashChild(t *testing.T, dir string, killAfter time.Duration, acked map[uint64]string, during func(), afterDuring bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q %s", sc.Text(), stderr.String())
	}
	first := killAfter
	if afterDuring && during != nil {
		first = 8 * time.Second // before the child's own 10 s bound
	}
	timer := time.AfterFunc(first, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer timer.Stop()
	for sc.Scan() {
		seq, hash, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[n] = hash
		if during != nil && n > 150 { // the checkpoint after record 100 is durable
			during()
			during = nil
			if afterDuring {
				timer.Reset(killAfter)
			}
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed; stderr: %s", err, stderr.String())
	}
}
