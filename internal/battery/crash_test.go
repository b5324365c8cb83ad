package battery

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/store/sqlite"
)

// TestCrash_C1_KillUnderLoad is spec/security.md C1: `keywarden serve` under
// load from eight bots is killed with SIGKILL at a random moment, restarted,
// and after every restart:
//
//   - every order a bot saw acknowledged (2xx) has its allowed intent and an
//     outcome record (the venue's answer, or the "unknown" record start-up
//     writes for an intent left open by the crash);
//   - every order the venue received has an allowed intent (write-ahead);
//   - no order reached the venue twice;
//   - the audit chain verifies (`keywarden audit verify`);
//   - SQLite's PRAGMA integrity_check on the killed server's data is ok.
//
// The quick tier runs 3 rounds; KEYWARDEN_BATTERY_LONG=1 runs 20.
func TestCrash_C1_KillUnderLoad(t *testing.T) {
	rounds := 3
	if os.Getenv("KEYWARDEN_BATTERY_LONG") == "1" {
		rounds = 20
	}
	in := newInstall(t)
	in.serve().stop(t) // the first start creates the audit signing key
	pub := strings.TrimSpace(in.run("", "audit", "public-key"))
	p := in.serve()
	in.issue()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := map[string]string{} // client order id → request id
	var totalAcked, totalSent int
	for round := range rounds {
		var mu sync.Mutex
		var sent atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		hc := &http.Client{Timeout: 5 * time.Second}
		for w := range 8 {
			wg.Go(func() {
				for i := 0; i < 5000 && !stop.Load(); i++ {
					coid := fmt.Sprintf("c%dw%di%d", round, w, i)
					sent.Add(1)
					r := in.order(hc, coid)
					if r.err == nil && r.status >= 200 && r.status < 300 {
						mu.Lock()
						acked[coid] = r.requestID
						mu.Unlock()
					}
					if r.err != nil {
						return // the server is gone
					}
				}
			})
		}
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		p.kill()
		stop.Store(true)
		wg.Wait()
		hc.CloseIdleConnections()
		totalSent += int(sent.Load())
		in.integrityCheck(t, round)
		p = in.serve() // start-up closes the intents the crash left open
		mu.Lock()
		totalAcked = len(acked)
		mu.Unlock()
		in.checkCrashInvariants(t, round, acked)
		if out := in.run("", "audit", "verify", "--public-key", pub); !strings.Contains(out, "OK") {
			t.Fatalf("round %d: audit verify: %s", round, out)
		}
	}
	// The server still trades after the last restart.
	if r := in.order(http.DefaultClient, "after-crashes"); r.status != http.StatusOK {
		t.Errorf("order after %d crashes = %d %s", rounds, r.status, r.body)
	}
	p.stop(t)
	if out := in.run("", "audit", "verify"); !strings.Contains(out, "OK") {
		t.Errorf("audit verify after the last stop: %s", out)
	}
	in.scanMarker(p.logs.String())
	t.Logf("%d rounds: %d orders sent, %d acknowledged, all accounted for", rounds, totalSent, totalAcked)
	if totalAcked == 0 {
		t.Error("no order was acknowledged: the load never ran")
	}
}

// integrityCheck runs SQLite's own consistency check on the data file the
// killed server left (C1.1).
func (in *install) integrityCheck(t *testing.T, round int) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(in.dir, "data", sqlite.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatalf("round %d: integrity_check: %v", round, err)
	}
	if res != "ok" {
		t.Errorf("round %d: PRAGMA integrity_check after kill -9 = %q", round, res)
	}
}

// checkCrashInvariants reads the audit log and the simulator's request log.
func (in *install) checkCrashInvariants(t *testing.T, round int, acked map[string]string) {
	t.Helper()
	type trail struct {
		intent   bool
		coid     string
		outcomes int
	}
	trails := map[string]*trail{}
	byCOID := map[string]string{}
	for rec, err := range audit.Search(in.auditDir(), audit.Filter{}) {
		if err != nil {
			t.Fatalf("round %d: audit search: %v", round, err)
		}
		if rec.RequestID == "" {
			continue
		}
		tr := trails[rec.RequestID]
		if tr == nil {
			tr = &trail{}
			trails[rec.RequestID] = tr
		}
		if rec.Intent != nil && rec.Intent.Decision == "allow" {
			tr.intent = true
			if q, err := url.ParseQuery(rec.Intent.Body); err == nil {
				tr.coid = q.Get("newClientOrderId")
				if tr.coid != "" {
					byCOID[tr.coid] = rec.RequestID
				}
			}
		}
		if rec.Outcome != nil {
			tr.outcomes++
		}
	}
	// Every acknowledged order: intent and exactly one outcome.
	for coid, id := range acked {
		tr := trails[id]
		if id == "" || tr == nil || !tr.intent {
			t.Errorf("round %d: acknowledged order %s (request %q) has no allowed intent record", round, coid, id)
			continue
		}
		if tr.outcomes != 1 {
			t.Errorf("round %d: acknowledged order %s has %d outcome records, want 1", round, coid, tr.outcomes)
		}
	}
	// After start-up, no allowed intent is left open.
	for id, tr := range trails {
		if tr.intent && tr.outcomes != 1 {
			t.Errorf("round %d: request %s has %d outcomes after restart, want 1", round, id, tr.outcomes)
		}
	}
	// Every order the venue saw: intent first, and only once.
	seen := map[string]int{}
	for _, l := range in.kit.Log() {
		if l.Path != "/api/v3/order" || l.APIKey != in.exKey {
			continue
		}
		q, _ := url.ParseQuery(string(l.Body))
		coid := q.Get("newClientOrderId")
		seen[coid]++
		if _, ok := byCOID[coid]; !ok {
			t.Errorf("round %d: the venue received order %s with no allowed intent record", round, coid)
		}
	}
	for coid, n := range seen {
		if n > 1 {
			t.Errorf("round %d: order %s reached the venue %d times", round, coid, n)
		}
	}
}

// TestFault_F17_SIGSTOP freezes `keywarden serve` with SIGSTOP while bots
// have orders in flight and their clients give up; after SIGCONT no order
// reaches the venue twice and every forwarded order has its records.
func TestFault_F17_SIGSTOP(t *testing.T) {
	in := newInstall(t)
	p := in.serve()
	in.issue()
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 1 * time.Second}
	var stop atomic.Bool
	for w := range 4 {
		wg.Go(func() {
			for i := 0; i < 2000 && !stop.Load(); i++ {
				in.order(hc, fmt.Sprintf("s%di%d", w, i))
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // clients time out against the frozen server
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	p.stop(t)
	p = in.serve()
	in.checkCrashInvariants(t, 0, nil)
	if r := in.order(http.DefaultClient, "after-stop"); r.status != http.StatusOK {
		t.Errorf("order after SIGCONT = %d %s", r.status, r.body)
	}
	p.stop(t)
	if out := in.run("", "audit", "verify"); !strings.Contains(out, "OK") {
		t.Errorf("audit verify: %s", out)
	}
}
