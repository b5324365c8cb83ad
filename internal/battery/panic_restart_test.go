package battery

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

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
// lifts it; a restart after the resume comes up running.
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
	in.run("", "gateway", "resume")
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
