package battery

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDurability_C2_FlushBeforeForward is spec/security.md C2: the real
// binary runs under strace (-f, fdatasync/fsync/connect/sendto/write, with
// file and socket names), one signed order goes through the gateway to the
// simulator, and the system-call trace must show, in this order: the write
// of the order's intent record to an audit segment, an fdatasync of that
// segment that returned, and only then the first write of the order to the
// simulator's socket.
//
// It skips when strace is not installed, unless KEYWARDEN_REQUIRE_STRACE=1
// (set by scripts/setup/strace.sh), which makes it fail instead.
func TestDurability_C2_FlushBeforeForward(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_STRACE") == "1" {
			t.Fatal("strace is required (KEYWARDEN_REQUIRE_STRACE=1) but not installed")
		}
		t.Skip("strace not installed; scripts/setup/strace.sh installs it")
	}
	in := newInstall(t)
	cfg, err := os.ReadFile(in.config)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`upstream = "http://127\.0\.0\.1:(\d+)"`).FindSubmatch(cfg)
	if m == nil {
		t.Fatal("no simulator address in the config")
	}
	simPort := string(m[1])
	trace := filepath.Join(t.TempDir(), "trace")
	p := in.serveUnder(strace, "-f", "-yy", "-s", "65536", "-o", trace,
		"-e", "trace=fdatasync,fsync,connect,sendto,write", "--")
	in.issue()
	coid := "c2order" + randHex(6)
	if r := in.order(&http.Client{Timeout: 30 * time.Second}, coid); r.status != http.StatusOK {
		t.Fatalf("order through the traced gateway = %d %q %v", r.status, r.body, r.err)
	}
	p.stopTraced(t)

	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	segRe := regexp.MustCompile(`^(\d+) +(?:<\.\.\. )?(write|fdatasync)\((\d+)</[^>]*/audit/seg-\d+\.jsonl>`)
	resumedRe := regexp.MustCompile(`^(\d+) +<\.\.\. fdatasync resumed>.*= 0$`)
	upRe := regexp.MustCompile(`^(\d+) +write\(\d+<TCP:\[[^\]]*->127\.0\.0\.1:` + simPort + `\]>, "POST /api/v3/order`)
	intentAt, syncedAt, forwardAt := -1, -1, -1
	pendingSync := map[string]bool{} // pid → an audit fdatasync started after the intent write
	for i, l := range lines {
		if intentAt < 0 {
			if sm := segRe.FindStringSubmatch(l); sm != nil && sm[2] == "write" && strings.Contains(l, coid) && strings.Contains(l, `\"intent\"`) {
				intentAt = i
			}
			continue
		}
		if syncedAt < 0 {
			if sm := segRe.FindStringSubmatch(l); sm != nil && sm[2] == "fdatasync" {
				if strings.HasSuffix(l, "= 0") {
					syncedAt = i
				} else if strings.Contains(l, "<unfinished ...>") {
					pendingSync[sm[1]] = true
				}
			} else if rm := resumedRe.FindStringSubmatch(l); rm != nil && pendingSync[rm[1]] {
				syncedAt = i
			}
		}
		if forwardAt < 0 && upRe.MatchString(l) {
			forwardAt = i
		}
	}
	if intentAt < 0 {
		t.Fatalf("no write of the intent record for %s to an audit segment in the trace (%d lines)", coid, len(lines))
	}
	if forwardAt < 0 {
		t.Fatalf("no write of the order to the simulator (port %s) in the trace", simPort)
	}
	if syncedAt < 0 || syncedAt > forwardAt {
		t.Fatalf("the order reached the simulator's socket (trace line %d) before an fdatasync of the audit segment returned after its intent write (line %d): fdatasync at %d\n%s\n%s",
			forwardAt+1, intentAt+1, syncedAt+1, shorten(lines[intentAt]), shorten(lines[forwardAt]))
	}
	t.Logf("trace lines: intent write %d, audit fdatasync returned %d, first upstream write %d", intentAt+1, syncedAt+1, forwardAt+1)
}

func shorten(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// tracedProc is `keywarden serve` running under a tracer.
type tracedProc struct {
	*serveProc
	child int // keywarden's pid (the tracer's child)
}

// serveUnder starts `keywarden serve` under tracer (with its arguments,
// ending in "--"), and waits until /healthz answers 200.
func (in *install) serveUnder(tracer string, args ...string) *tracedProc {
	in.t.Helper()
	cmd := exec.Command(tracer, append(args, in.bin, "serve")...)
	cmd.Dir = in.dir
	cmd.Env = in.env()
	p := &serveProc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	tp := &tracedProc{serveProc: p}
	in.t.Cleanup(func() {
		if tp.child > 0 {
			_ = syscall.Kill(tp.child, syscall.SIGKILL) // the tracer exits with it
		}
		if p.wait(10*time.Second) != nil {
			_ = cmd.Process.Kill()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case err := <-p.done:
			p.done <- err
			in.t.Fatalf("traced serve exited early: %v\n%s", err, p.logs.String())
		default:
		}
		if tp.child == 0 {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
			if f := strings.Fields(string(b)); len(f) > 0 {
				tp.child, _ = strconv.Atoi(f[0])
			}
		}
		resp, err := http.Get("http://" + in.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && tp.child > 0 {
				return tp
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.t.Fatalf("traced serve never became healthy:\n%s", p.logs.String())
	return nil
}

// stopTraced sends SIGTERM to keywarden (not the tracer, which would
// detach and leave it running) and waits for both to exit.
func (p *tracedProc) stopTraced(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(p.child, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to the traced serve: %v", err)
	}
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatalf("traced serve did not exit: %v\n%s", err, p.logs.String())
	}
	p.child = 0
}
