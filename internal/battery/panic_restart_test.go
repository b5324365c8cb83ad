package battery

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/operator"
)

// totpSeed returns the TOTP seed of the otpauth:// URL an operator
// enrollment printed in out.
func totpSeed(t *testing.T, out string) []byte {
	t.Helper()
	seed, err := operator.SeedFromURL(out)
	if err != nil {
		t.Fatalf("no TOTP seed in the enrollment output (%v):\n%s", err, out)
	}
	return seed
}

// serveAnswering starts `keywarden serve` and waits until /healthz answers
// at all (a stopped gateway answers 503), returning that status.
func (in *install) serveAnswering() (*serveProc, int) {
	in.t.Helper()
	cmd := exec.Command(in.bin, "serve")
	cmd.Dir = in.dir
	cmd.Env = in.env()
	p := &serveProc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	in.mu.Lock()
	in.proc = p
	in.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			p.done <- err
			in.t.Fatalf("serve exited early: %v\n%s", err, p.logs.String())
		default:
		}
		resp, err := http.Get("http://" + in.addr + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return p, resp.StatusCode
		}
		if time.Now().After(deadline) {
			p.kill()
			in.t.Fatalf("serve never answered:\n%s", p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFault_F18_PanicSurvivesRestart: the panic switch (`keywarden panic
// --all`) survives kill -9 and a restart: the new process comes up refusing
// every request, the venue receives nothing, and only an operator's resume
// with a fresh TOTP code lifts it (a vault without operators refuses the
// resume until one is enrolled); a restart after the resume comes up
// running.
func TestFault_F18_PanicSurvivesRestart(t *testing.T) {
	in := newInstall(t)
	p := in.serve()
	in.issue()
	if r := in.order(http.DefaultClient, "before-panic"); r.status != http.StatusOK {
		t.Fatalf("order before the panic = %d %s", r.status, r.body)
	}
	if out := in.run("", "panic", "--all", "--reason", "battery F18"); !strings.Contains(out, "gateway stopped") {
		t.Fatalf("panic --all printed %q", out)
	}
	if r := in.order(http.DefaultClient, "during-panic"); r.status != http.StatusServiceUnavailable {
		t.Errorf("order during the panic = %d %s, want 503", r.status, r.body)
	}
	p.kill()
	orders := len(in.kit.Orders(in.exKey))

	p, health := in.serveAnswering()
	if health != http.StatusServiceUnavailable {
		t.Errorf("/healthz after a restart in panic = %d, want 503", health)
	}
	for i := range 5 {
		if r := in.order(http.DefaultClient, "after-restart-"+string(rune('a'+i))); r.status != http.StatusServiceUnavailable {
			t.Errorf("order after a restart in panic = %d %s, want 503", r.status, r.body)
		}
	}
	if n := len(in.kit.Orders(in.exKey)) - orders; n != 0 {
		t.Errorf("%d orders reached the venue after the restart, want 0", n)
	}
	if !strings.Contains(p.logs.String(), "gateway starts stopped") {
		t.Errorf("serve did not log that it starts stopped:\n%s", p.logs.String())
	}
	// Leaving the panic needs an operator's TOTP code (security.md V11).
	// This vault has no operator yet: the resume is refused, says how to
	// enrol one, and the gateway stays stopped across the restart that
	// enrolling takes.
	if out, err := in.try("", "gateway", "resume", "--reason", "battery F18"); err == nil || !strings.Contains(out, "keywarden operator first-admin") {
		t.Errorf("resume without any operator = %v %q, want a refusal naming operator first-admin", err, out)
	}
	if r := in.order(http.DefaultClient, "after-refused-resume"); r.status != http.StatusServiceUnavailable {
		t.Errorf("order after a refused resume = %d %s, want 503", r.status, r.body)
	}
	p.stop(t)
	write(t, filepath.Join(in.dir, "admin-pass"), "the battery admin's password\n")
	seed := totpSeed(t, in.run("", "operator", "first-admin", "--name", "root", "--password-file", "admin-pass"))
	if p, health = in.serveAnswering(); health != http.StatusServiceUnavailable {
		t.Errorf("/healthz after enrolling an operator = %d, want 503", health)
	}
	in.run(operator.Code(seed, time.Now())+"\n", "gateway", "resume", "--operator", "root", "--reason", "battery F18")
	if r := in.order(http.DefaultClient, "after-resume"); r.status != http.StatusOK {
		t.Errorf("order after the resume = %d %s, want 200", r.status, r.body)
	}
	p.stop(t)
	p = in.serve() // waits for a healthy gateway: the resume was kept
	if r := in.order(http.DefaultClient, "after-second-restart"); r.status != http.StatusOK {
		t.Errorf("order after a restart once resumed = %d %s, want 200", r.status, r.body)
	}
	p.stop(t)
	if out := in.run("", "audit", "verify"); !strings.Contains(out, "OK") {
		t.Errorf("audit verify: %s", out)
	}
	in.scanMarker(p.logs.String())
}
