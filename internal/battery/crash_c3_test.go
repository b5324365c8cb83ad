package battery

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/merkle"
	"github.com/keywarden/keywarden/internal/monitor"
)

// TestCrash_C3_RestoreOldBackup is security.md C3 with the real binary:
// serve runs with a live witness (audit_witness_file) and a webhook for
// alerts; calls are made in two runs, the data directory (vault store and
// audit log) is backed up between them. With the restore, the old backup
// is put back: serve refuses to start (rollback: the witness is ahead of
// the log), a run without the witness writes on past the witness, and
// serve with the witness again refuses to start naming the tree size with
// two roots, as does audit verify --witness; each refusal raises the
// critical audit_fork alert at the webhook. Without the restore the same
// sequence starts, serves and verifies.
func TestCrash_C3_RestoreOldBackup(t *testing.T) {
	for _, restore := range []bool{false, true} {
		t.Run(fmt.Sprintf("restore=%v", restore), func(t *testing.T) {
			runC3(t, restore)
		})
	}
}

func runC3(t *testing.T, restore bool) {
	in := newInstall(t)
	hook := &c3AlertSink{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	write(t, filepath.Join(in.dir, "hook.key"), "webhook-signing-key-"+randHex(16)+"\n")
	witness := filepath.Join(t.TempDir(), "audit.witness") // off the data directory and its backups
	write(t, witness, "")
	base, err := os.ReadFile(in.config)
	if err != nil {
		t.Fatal(err)
	}
	alerts := "\n[alerts]\n[[alerts.webhook]]\nurl = \"" + hs.URL + "\"\nkey_file = \"hook.key\"\n"
	plain := filepath.Join(in.dir, "plain.toml")
	write(t, plain, string(base)+alerts)
	withWitness := filepath.Join(in.dir, "witness.toml")
	write(t, withWitness, strings.Replace(string(base), "[gateway]\n", "[gateway]\naudit_witness_file = \""+witness+"\"\n", 1)+alerts)
	in.config = withWitness
	hc := &http.Client{Timeout: 10 * time.Second}

	orders := func(n int, tag string) {
		t.Helper()
		for i := range n {
			if r := in.order(hc, fmt.Sprintf("c3%s%d", tag, i)); r.err != nil || r.status != http.StatusOK {
				t.Fatalf("order %s %d: %d %v %s", tag, i, r.status, r.err, r.body)
			}
		}
	}

	// Run 1, then the backup, then run 2: the witness holds both runs'
	// closing checkpoints.
	p := in.serve()
	in.issue()
	orders(3, "a")
	p.stop(t)
	backup := filepath.Join(t.TempDir(), "backup")
	copyTree(t, filepath.Join(in.dir, "data"), backup)
	backupSize := logSize(t, filepath.Join(backup, "audit"))
	p = in.serve()
	orders(3, "b")
	p.stop(t)
	sizes := witnessSizes(t, witness, in)
	if len(sizes) < 2 || sizes[len(sizes)-1] <= backupSize {
		t.Fatalf("witness tree sizes %v, want checkpoints past the backup (%d records)", sizes, backupSize)
	}

	if restore {
		if err := os.RemoveAll(filepath.Join(in.dir, "data")); err != nil {
			t.Fatal(err)
		}
		copyTree(t, backup, filepath.Join(in.dir, "data"))
	}

	// Start again with the witness.
	if restore {
		logs := in.serveFails()
		t.Logf("serve after the restore:\n%s", lastLines(logs, 3))
		for _, want := range []string{"rollback", fmt.Sprintf("tree size %d", sizes[len(sizes)-1])} {
			if !strings.Contains(logs, want) {
				t.Errorf("serve after the restore: output does not name %q:\n%s", want, logs)
			}
		}
		if a := hook.find(ruleAuditFork); a == nil || a.Evidence["kind"] != "rollback" {
			t.Errorf("webhook alerts %v, want an audit_fork rollback alert", hook.rules())
		}
	} else {
		p = in.serve()
		orders(2, "c")
		p.stop(t)
	}

	// Written on without the witness (not configured, or unreachable),
	// past every size the witness holds.
	in.config = plain
	p = in.serve()
	orders(8, "d")
	p.stop(t)
	in.config = withWitness
	if got := logSize(t, in.auditDir()); got <= sizes[len(sizes)-1] {
		t.Fatalf("log has %d records, want more than the witness's %d", got, sizes[len(sizes)-1])
	}

	out, verr := in.try("", "audit", "verify", "--witness", witness)
	if !restore {
		if verr != nil || !strings.Contains(out, "no fork") {
			t.Errorf("audit verify --witness (no restore) = %v:\n%s", verr, out)
		}
		p = in.serve()
		orders(2, "e")
		p.stop(t)
		if out := in.run("", "audit", "verify", "--witness", witness); !strings.Contains(out, "no fork") {
			t.Errorf("audit verify --witness after the last run:\n%s", out)
		}
		if a := hook.find(ruleAuditFork); a != nil {
			t.Errorf("audit_fork raised without a restore: %+v", *a)
		}
		in.scanMarker()
		return
	}

	// The fork: the first size the witness holds past the backup now has
	// two roots, the witness's and the restored log's.
	var forked uint64
	for _, s := range sizes {
		if s > backupSize {
			forked = s
			break
		}
	}
	witnessRoot := witnessRootAt(t, witness, in, forked)
	logRoot := rootAt(t, in.auditDir(), forked)
	if witnessRoot == "" || witnessRoot == logRoot {
		t.Fatalf("witness root %q and log root %q at tree size %d: want two different roots", witnessRoot, logRoot, forked)
	}
	if verr == nil {
		t.Errorf("audit verify --witness after the restore = nil, want a fork\n%s", out)
	}
	for _, want := range []string{"fork", fmt.Sprintf("tree size %d", forked), witnessRoot, logRoot} {
		if !strings.Contains(out, want) {
			t.Errorf("audit verify --witness: output does not name %q:\n%s", want, out)
		}
	}
	hook.reset()
	logs := in.serveFails()
	t.Logf("audit verify --witness after the write-on:\n%s\nserve:\n%s", out, lastLines(logs, 3))
	for _, want := range []string{"fork", fmt.Sprintf("tree size %d", forked), witnessRoot, logRoot} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve after the write-on: output does not name %q:\n%s", want, logs)
		}
	}
	a := hook.find(ruleAuditFork)
	if a == nil {
		t.Fatalf("webhook alerts %v, want audit_fork", hook.rules())
	}
	want := map[string]string{"kind": "fork", "tree_size": fmt.Sprint(forked), "witness_root": witnessRoot, "log_root": logRoot}
	for k, v := range want {
		if a.Evidence[k] != v {
			t.Errorf("audit_fork evidence %s = %q, want %q", k, a.Evidence[k], v)
		}
	}
	if a.Severity != monitor.SeverityCritical {
		t.Errorf("audit_fork severity = %s, want critical", a.Severity)
	}
	in.scanMarker()
}

const ruleAuditFork = "audit_fork"

// serveFails starts serve and expects it to exit with an error before it
// becomes healthy; it returns the output.
func (in *install) serveFails() string {
	in.t.Helper()
	cmd := exec.Command(in.bin, "serve")
	cmd.Dir = in.dir
	cmd.Env = in.env()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			in.t.Errorf("serve exited cleanly, want a refusal:\n%s", out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		in.t.Fatalf("serve did not refuse to start:\n%s", out.String())
	}
	if resp, err := http.Get("http://" + in.addr + "/healthz"); err == nil {
		resp.Body.Close()
		in.t.Errorf("something still answers on %s after the refusal", in.addr)
	}
	in.outputs = append(in.outputs, out.String())
	return out.String()
}

// c3AlertSink is a loopback webhook receiver.
type c3AlertSink struct {
	mu     sync.Mutex
	alerts []monitor.Alert
}

func (s *c3AlertSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var a monitor.Alert
	if json.Unmarshal(b, &a) == nil {
		s.mu.Lock()
		s.alerts = append(s.alerts, a)
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *c3AlertSink) find(rule string) *monitor.Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.alerts {
		if s.alerts[i].Rule == rule {
			a := s.alerts[i]
			return &a
		}
	}
	return nil
}

func (s *c3AlertSink) rules() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.alerts {
		out = append(out, a.Rule)
	}
	return out
}

func (s *c3AlertSink) reset() {
	s.mu.Lock()
	s.alerts = nil
	s.mu.Unlock()
}

// copyTree copies a directory tree (regular files and directories).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil // sockets
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// logRecords reads every record of the audit log in dir.
func logRecords(t *testing.T, dir string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for r, err := range audit.Search(dir, audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func logSize(t *testing.T, dir string) uint64 { return uint64(len(logRecords(t, dir))) }

// rootAt computes the Merkle root of the log's first size records.
func rootAt(t *testing.T, dir string, size uint64) string {
	t.Helper()
	var leaves []merkle.Hash
	for _, r := range logRecords(t, dir) {
		if r.Seq <= size {
			h, err := hex.DecodeString(r.Hash)
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, merkle.LeafHash(h))
		}
	}
	if uint64(len(leaves)) != size {
		t.Fatalf("log has %d records, want %d", len(leaves), size)
	}
	root := merkle.Root(leaves)
	return hex.EncodeToString(root[:])
}

// witnessEntries reads the witness file's C2SP notes.
func witnessEntries(t *testing.T, path string, in *install) []audit.WitnessCheckpoint {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := audit.ReadWitness(bytes.NewReader(b), nil) // serve checked the signatures
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.WitnessCheckpoint
	for _, w := range ws {
		if w.Note {
			out = append(out, w)
		}
	}
	return out
}

func witnessSizes(t *testing.T, path string, in *install) []uint64 {
	var out []uint64
	for _, w := range witnessEntries(t, path, in) {
		out = append(out, w.Count)
	}
	return out
}

func witnessRootAt(t *testing.T, path string, in *install, size uint64) string {
	for _, w := range witnessEntries(t, path, in) {
		if w.Count == size {
			return w.Root
		}
	}
	return ""
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestCrash_C3_ForkWhileRunning: serve runs with its witness while a copy
// of its data directory (the backup, restored on another host) is written
// on and its checkpoints are appended to the same witness file (keywarden
// audit checkpoints >> witness). At its next durable batch the running
// serve finds two roots for one tree size, raises audit_fork and stops.
func TestCrash_C3_ForkWhileRunning(t *testing.T) {
	in := newInstall(t)
	hook := &c3AlertSink{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	write(t, filepath.Join(in.dir, "hook.key"), "webhook-signing-key-"+randHex(16)+"\n")
	witness := filepath.Join(t.TempDir(), "audit.witness")
	write(t, witness, "")
	base, err := os.ReadFile(in.config)
	if err != nil {
		t.Fatal(err)
	}
	alerts := "\n[alerts]\n[[alerts.webhook]]\nurl = \"" + hs.URL + "\"\nkey_file = \"hook.key\"\n"
	in.config = filepath.Join(in.dir, "witness.toml")
	write(t, in.config, strings.Replace(string(base), "[gateway]\n", "[gateway]\naudit_witness_file = \""+witness+"\"\n", 1)+alerts)
	hc := &http.Client{Timeout: 10 * time.Second}
	orders := func(on *install, n int, tag string) {
		t.Helper()
		for i := range n {
			if r := on.order(hc, fmt.Sprintf("c3%s%d", tag, i)); r.err != nil || r.status != http.StatusOK {
				t.Fatalf("order %s %d: %d %v %s", tag, i, r.status, r.err, r.body)
			}
		}
	}

	p := in.serve()
	in.issue()
	orders(in, 2, "a")
	p.stop(t)
	copyTree(t, filepath.Join(in.dir, "data"), filepath.Join(in.dir, "copydata"))

	// The original runs with the witness and writes more than the copy
	// will.
	p = in.serve()
	orders(in, 8, "b")

	// The copy: its own data directory and port, no witness.
	cp := &install{t: t, bin: in.bin, dir: in.dir, kit: in.kit, cred: in.cred, addr: freeAddr(t)}
	cp.config = filepath.Join(in.dir, "copy.toml")
	cfg := strings.Replace(string(base), `data_dir = "data"`, `data_dir = "copydata"`, 1)
	write(t, cp.config, strings.Replace(cfg, in.addr, cp.addr, 1)+alerts)
	t.Cleanup(func() {
		cp.mu.Lock()
		q := cp.proc
		cp.mu.Unlock()
		if q != nil {
			q.kill()
		}
	})
	q := cp.serve()
	orders(cp, 3, "c")
	q.stop(t)
	branch := cp.run("", "audit", "checkpoints")
	f, err := os.OpenFile(witness, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(branch); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if a := hook.find(ruleAuditFork); a != nil {
		t.Fatalf("audit_fork before the original wrote again: %+v", *a)
	}

	// The copy's last checkpoint covers a tree size the original passed.
	copySizes := witnessSizes(t, witness, in)
	forked := copySizes[len(copySizes)-1]
	if logSize(t, in.auditDir()) <= forked {
		t.Fatalf("the original has %d records, want more than the copy's %d", logSize(t, in.auditDir()), forked)
	}
	origRoot, copyRoot := rootAt(t, in.auditDir(), forked), rootAt(t, filepath.Join(in.dir, "copydata", "audit"), forked)

	// The next batch on the original.
	in.order(hc, "c3next")
	err = p.wait(60 * time.Second)
	logs := p.logs.String()
	if err == nil || !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("serve after the fork reached its witness: %v, want it to stop with an error\n%s", err, lastLines(logs, 5))
	}
	t.Logf("serve:\n%s", lastLines(logs, 3))
	for _, want := range []string{"fork", fmt.Sprintf("tree size %d", forked), origRoot, copyRoot} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve output does not name %q:\n%s", want, lastLines(logs, 5))
		}
	}
	a := hook.find(ruleAuditFork)
	if a == nil || a.Evidence["tree_size"] != fmt.Sprint(forked) || a.Severity != monitor.SeverityCritical {
		t.Errorf("webhook alerts %v (audit_fork %+v), want a critical audit_fork for tree size %d", hook.rules(), a, forked)
	}
	in.scanMarker(logs)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
