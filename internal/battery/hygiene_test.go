package battery

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// procField returns the line of /proc/<pid>/<file> that starts with prefix.
func procField(t *testing.T, pid int, file, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), file))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("/proc/%d/%s has no %q line", pid, file, prefix)
	return ""
}

// TestHygiene_H3_CoreDumpsOffAndLockedMemory checks a running, unsealed
// `keywarden serve`: its core size limit is 0 (set by memguard when the
// vault package starts, before any secret is read), it is not dumpable,
// its key material sits in locked memory (VmLck > 0: memguard mlocks its
// buffers), and SIGABRT with GOTRACEBACK=crash leaves no core file.
func TestHygiene_H3_CoreDumpsOffAndLockedMemory(t *testing.T) {
	in := newInstall(t)
	p := in.serve("GOTRACEBACK=crash")
	pid := p.cmd.Process.Pid
	core := strings.Fields(procField(t, pid, "limits", "Max core file size"))
	// "Max core file size  <soft> <hard> bytes"
	if len(core) < 6 || core[4] != "0" {
		t.Errorf("core size limit of serve = %v, want a soft limit of 0", core)
	}
	lck := strings.Fields(procField(t, pid, "status", "VmLck:"))
	if len(lck) < 2 || lck[1] == "0" {
		t.Errorf("serve has no locked memory (%v): secrets are not mlocked", lck)
	}
	t.Logf("serve: %s; VmLck %s kB", strings.Join(core[:6], " "), lck[1])
	// The process marked itself not dumpable (PR_SET_DUMPABLE 0, read back
	// with PR_GET_DUMPABLE): no ptrace or /proc/<pid>/mem by other processes
	// of its user.
	if !strings.Contains(p.logs.String(), `"not_dumpable":true`) {
		t.Errorf("serve did not report itself not dumpable; its log:\n%s", p.logs.String())
	}
	// Abort it: the runtime would dump core if the limit allowed one.
	_ = p.cmd.Process.Signal(syscall.SIGABRT)
	_ = p.wait(20 * time.Second)
	for _, dir := range []string{in.dir, filepath.Join(in.dir, "data")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() == "core" || strings.HasPrefix(e.Name(), "core.") {
				t.Errorf("a core file %s was written", filepath.Join(dir, e.Name()))
			}
		}
	}
	// The traceback printed on abort carries no secret either.
	in.scanMarker(p.logs.String())
}

// TestHygiene_H1_NoSecretInOutputs runs serve at debug level through
// allowed calls, refusals (bad signature, unknown credential, policy
// denial) and a venue error, then searches for the marker and every secret
// in: every HTTP response (headers and body), the server's logs, the audit
// files and the whole data directory, every CLI output, metrics if served,
// and /proc/<pid>/environ.
func TestHygiene_H1_NoSecretInOutputs(t *testing.T) {
	in := newInstall(t)
	p := in.serve()
	in.issue()
	var responses []string
	keep := func(r reply) {
		responses = append(responses, r.body)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	if r := in.order(hc, "h1-ok"); r.status != http.StatusOK {
		t.Fatalf("order = %d %s", r.status, r.body)
	} else {
		keep(r)
	}
	keep(in.call(hc, http.MethodGet, "/api/v3/account", "", ""))
	// A policy denial (symbol not allowed) and a venue refusal (bad
	// quantity precision is the simulator's to judge).
	keep(in.call(hc, http.MethodPost, "/api/v3/order", "",
		"symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=10"))
	// Wrong secret, then an unknown credential id.
	good := in.cred
	in.cred = &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: good.APIKey, Secret: exchange.Secret(marker + "wrong")}
	keep(in.order(hc, "h1-bad-secret"))
	in.cred = &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "kwb_" + randHex(12), Secret: good.Secret}
	keep(in.order(hc, "h1-unknown"))
	in.cred = good
	// Raw responses with headers, including the health and metrics pages.
	for _, path := range []string{"/healthz", "/metrics", "/binance/api/v3/ticker/price?symbol=BTCUSDT"} {
		resp, err := hc.Get("http://" + in.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var hdr strings.Builder
		_ = resp.Header.Write(&hdr)
		responses = append(responses, hdr.String()+string(b))
	}
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "environ"))
	if err == nil {
		responses = append(responses, string(env))
	}
	p.stop(t)
	in.scanMarker(append(responses, p.logs.String())...)
	if !strings.Contains(p.logs.String(), `"level":"DEBUG"`) {
		t.Log("serve wrote no debug line; the scan covered info and above")
	}
}
