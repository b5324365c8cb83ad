package faults

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
)

// Faults below the gateway (spec/security.md §4 F11–F18): clock skew, the
// audit disk filling up, the database locked, an unreadable secret, the
// seal backend down, and the panic switch under load.

func TestFault_F11_ClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{30 * time.Second, -30 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			var off atomic.Int64
			off.Store(int64(skew))
			r := newRig(t, rigOptions{kitNow: func() time.Time { return time.Now().Add(time.Duration(off.Load())) }})
			id, a := r.order()
			// The venue refuses a timestamp outside its window; the bot
			// gets that explicit error in the venue's shape, and nothing
			// is retried with another timestamp.
			if a.status != http.StatusBadRequest {
				t.Errorf("order with the venue's clock %v off = %d %q, want the venue's 400", skew, a.status, a.body)
			}
			if code, _ := r.binanceError(a); code != -1021 {
				t.Errorf("error code %d, want Binance's -1021 (timestamp outside recvWindow)", code)
			}
			if n := r.up.Count(http.MethodPost, orderPath); n != 1 {
				t.Errorf("the order reached the venue %d times, want 1", n)
			}
			if r.simOrders(id) != 0 {
				t.Error("the venue accepted an order outside its time window")
			}
			off.Store(0)
			r.afterFault()
		})
	}
}

// segmentBytes is the size of the largest file in the audit directory; a
// segment's size is that of its records, which end at the first zero byte
// (the log writes zeros ahead of them).
func segmentBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var max int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Size() > max {
			max = fi.Size()
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && strings.IndexByte(string(b), 0) >= 0 {
				max = int64(strings.IndexByte(string(b), 0))
			}
		}
	}
	return max
}

// TestFault_F13_DiskFull fills the audit disk: the file-size limit of this
// process (RLIMIT_FSIZE, what `prlimit --fsize` sets) is lowered to just
// above the audit segment, so the next writes fail as on a full disk. The
// gateway must fail closed (503, nothing forwarded without a durable
// intent), and after the space comes back and keywarden restarts, the chain
// is whole and orders go through.
func TestFault_F13_DiskFull(t *testing.T) {
	r := newRig(t, rigOptions{})
	if _, a := r.order(); a.status != http.StatusOK {
		t.Fatalf("first order = %d %q", a.status, a.body)
	}
	r.records() // everything so far is durable
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := uint64(segmentBytes(t, r.auditDir) + 3000)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
				t.Fatalf("restore RLIMIT_FSIZE: %v", err)
			}
		}
	}
	defer restore()
	ok, refused := 0, 0
	var refusedBody string
	for i := 0; i < 40 && refused < 3; i++ {
		_, a := r.order()
		switch a.status {
		case http.StatusOK:
			ok++ // the intent fitted; the outcome may not have
		case http.StatusServiceUnavailable:
			refused++
			refusedBody = a.body
		default:
			t.Fatalf("order on a full disk = %d %q, want 200 or 503", a.status, a.body)
		}
	}
	if err := r.srv.Audit.Healthy(); err == nil {
		t.Error("audit log reports healthy on a full disk")
	}
	restore()
	if refused == 0 {
		t.Fatal("the audit disk filled up and no order was refused")
	}
	if !strings.Contains(refusedBody, "audit") && !strings.Contains(refusedBody, "not accepting") {
		t.Errorf("refusal %q does not say why", refusedBody)
	}
	// Fail closed: only orders the bot was told succeeded reached the venue.
	if n := r.up.Count(http.MethodPost, orderPath); n != ok+1 {
		t.Errorf("%d orders reached the venue, want %d (the answered ones): a refused order went out", n, ok+1)
	}
	// Space is back: the log recovers on its own, without a restart.
	for i := 0; r.srv.Audit.Healthy() != nil; i++ {
		if i == 600 {
			t.Fatalf("audit log still failed 60 s after space came back: %v", r.srv.Audit.Healthy())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, a := r.order(); a.status != http.StatusOK {
		t.Errorf("order after the audit log recovered = %d %q", a.status, a.body)
	}
	// keywarden restarts (closing orphan intents) and serves.
	r.restart()
	ts := r.trails()
	for id, tr := range ts {
		if tr.intent && len(tr.outcomes) != 1 {
			t.Errorf("after restart, request %s has %d outcomes, want 1 (orphans closed at start)", id, len(tr.outcomes))
		}
	}
	if n := r.up.Count(http.MethodPost, orderPath); n > countAllowed(ts) {
		t.Errorf("%d orders reached the venue but only %d allowed intents are durable", n, countAllowed(ts))
	}
	r.afterFault()
}

func countAllowed(ts map[string]*trail) int {
	n := 0
	for _, tr := range ts {
		if tr.intent {
			n++
		}
	}
	return n
}

// TestFault_F12_AuditUnavailable closes the audit log under the gateway
// (every write fails, as with a 100% error injector): every signed call is
// refused with 503 and the venue sees nothing.
func TestFault_F12_AuditUnavailable(t *testing.T) {
	r := newRig(t, rigOptions{})
	if _, a := r.order(); a.status != http.StatusOK {
		t.Fatalf("first order = %d", a.status)
	}
	before := len(r.up.Hits())
	if err := r.srv.Audit.Close(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_, a := r.order()
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("order with the audit log down = %d %q, want 503", a.status, a.body)
		}
		r.binanceError(a)
		// Refusals are fast: wait a millisecond so two reads are never the
		// same signed bytes (which the replay check would refuse first).
		time.Sleep(2 * time.Millisecond)
		if a := r.call(http.MethodGet, accountPath, "", ""); a.status != http.StatusServiceUnavailable {
			t.Errorf("read with the audit log down = %d %q, want 503", a.status, a.body)
		}
	}
	if n := len(r.up.Hits()) - before; n != 0 {
		t.Errorf("%d requests reached the venue with the audit log down, want 0", n)
	}
	r.restart()
	r.afterFault()
}

// TestFault_F14_DatabaseLocked holds an exclusive SQLite transaction from
// another connection. The hot path never touches the database (credentials
// and keys are served from memory), so trading goes on with its audit
// trail; administrative writes wait busy_timeout and fail with a clear
// error, then succeed once the lock is gone.
func TestFault_F14_DatabaseLocked(t *testing.T) {
	r := newRig(t, rigOptions{})
	if _, a := r.order(); a.status != http.StatusOK { // opens and caches the key
		t.Fatalf("first order = %d", a.status)
	}
	// Another process's connection: the sqlite driver straight on the file.
	other, err := sql.Open("sqlite", filepath.Join(r.db.Dir(), sqlite.DBFile)+"?_pragma=busy_timeout(100)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}
	defer unlock()
	id, a := r.order()
	if a.status != http.StatusOK || r.simOrders(id) != 1 {
		t.Errorf("order with the database locked = %d %q, want 200 (the hot path does not use the database)", a.status, a.body)
	}
	start := time.Now()
	_, err = r.srv.Clients.Issue(context.Background(), client.IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour})
	if err == nil {
		t.Error("issuing a credential with the database locked succeeded")
	} else if !strings.Contains(strings.ToLower(err.Error()), "lock") && !strings.Contains(strings.ToLower(err.Error()), "busy") {
		t.Errorf("issue error %q does not say the database is locked", err)
	}
	t.Logf("issue with the database locked failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	unlock()
	if _, err := r.srv.Clients.Issue(context.Background(), client.IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour}); err != nil {
		t.Errorf("issue after the lock was released: %v", err)
	}
	r.afterFault()
}

// TestFault_F15_SecretRowUnreadable corrupts the sealed exchange key in the
// database before it is first opened: the call is refused with 503, nothing
// is signed or forwarded, and there is no fallback.
func TestFault_F15_SecretRowUnreadable(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	keys, err := r.db.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	corrupted := 0
	for _, k := range keys {
		if !strings.Contains(k, "binance/main") {
			continue
		}
		b, err := r.db.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		// Flip a byte in the middle: metadata stops parsing, sealed
		// bytes stop authenticating.
		b[len(b)/2] ^= 0x55
		if err := r.db.Put(ctx, k, b); err != nil {
			t.Fatal(err)
		}
		corrupted++
	}
	if corrupted == 0 {
		t.Fatalf("no record of binance/main among %v", keys)
	}
	_, a := r.order()
	if a.status != http.StatusServiceUnavailable && a.status != http.StatusInternalServerError {
		t.Errorf("order with its key unreadable = %d %q, want 503", a.status, a.body)
	}
	r.binanceError(a)
	if n := r.up.Count(http.MethodPost, orderPath); n != 0 {
		t.Errorf("%d orders reached the venue with the key unreadable", n)
	}
	// The operator hears of it: the server reports the vault's refusal
	// (serve raises the critical vault_tampered alert from it).
	r.mu.Lock()
	tampered := r.tampered
	r.mu.Unlock()
	if len(tampered) == 0 || !errors.Is(tampered[0], vault.ErrTampered) || !strings.HasPrefix(tampered[0].Error(), "binance/main: ") {
		t.Errorf("tampering reported = %v, want binance/main refused with vault.ErrTampered", tampered)
	}
	r.checkTrails()
	r.verify()
}

// failingWrapper is a KMS that can be taken down.
type failingWrapper struct {
	inner vault.KeyWrapper
	down  atomic.Bool
}

var errKMSDown = errors.New("kms: connection refused")

// Type names the test backend, as a real KMS wrapper names itself.
func (w *failingWrapper) Type() string { return "testkms" }

func (w *failingWrapper) Wrap(ctx context.Context, k []byte) ([]byte, error) {
	if w.down.Load() {
		return nil, errKMSDown
	}
	return w.inner.Wrap(ctx, k)
}

func (w *failingWrapper) Unwrap(ctx context.Context, k []byte) ([]byte, error) {
	if w.down.Load() {
		return nil, errKMSDown
	}
	return w.inner.Unwrap(ctx, k)
}

// xorWrapper stands in for a KMS key: it wraps with a key it never reveals.
type xorWrapper struct{ key [32]byte }

func (w *xorWrapper) Wrap(_ context.Context, k []byte) ([]byte, error) {
	out := make([]byte, len(k))
	for i := range k {
		out[i] = k[i] ^ w.key[i%32]
	}
	return out, nil
}

func (w *xorWrapper) Unwrap(ctx context.Context, k []byte) ([]byte, error) { return w.Wrap(ctx, k) }

// TestFault_F16_SealBackendDownAtBoot: with the KMS unreachable at start,
// the vault stays sealed and keywarden will not serve; when it comes back,
// unsealing works.
func TestFault_F16_SealBackendDownAtBoot(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(t.TempDir(), "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kms := &failingWrapper{inner: &xorWrapper{key: [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}}}
	v, err := vault.New(vault.Options{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Init(ctx, vault.InitOptions{Wrapper: kms}); err != nil {
		t.Fatal(err)
	}
	v.Seal()
	kms.down.Store(true)
	// Boot: a fresh vault on the same store, the KMS down.
	v2, err := vault.New(vault.Options{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	err = v2.UnsealWith(ctx, kms)
	if err == nil {
		t.Fatal("unsealed with the KMS down")
	}
	if !v2.Sealed() {
		t.Error("vault not sealed after a failed unseal")
	}
	// The error names the backend and its cause, not shares.
	t.Logf("unseal with the KMS down: %v", err)
	if !errors.Is(err, vault.ErrSealBackend) || !errors.Is(err, errKMSDown) || errors.Is(err, vault.ErrBadShares) {
		t.Errorf("unseal error %v does not name the seal backend and its cause", err)
	}
	if !strings.Contains(err.Error(), "external (testkms) seal: "+errKMSDown.Error()) {
		t.Errorf("unseal error %q does not name the testkms backend", err)
	}
	if _, err := server.New(ctx, server.Options{Store: db, Vault: v2, AuditDir: filepath.Join(t.TempDir(), "audit")}); !errors.Is(err, vault.ErrSealed) {
		t.Errorf("server.New on a sealed vault = %v, want ErrSealed", err)
	}
	kms.down.Store(false)
	if err := v2.UnsealWith(ctx, kms); err != nil {
		t.Fatalf("unseal after the KMS came back: %v", err)
	}
	if v2.Sealed() {
		t.Error("still sealed after the KMS came back")
	}
}

// TestFault_F18_PanicUnderLoad pulls the panic switch while eight bots send
// orders: once Stop has returned and the calls already past their last
// check have finished, no request reaches the venue, and every answer is
// 503 until Resume.
func TestFault_F18_PanicUnderLoad(t *testing.T) {
	r := newRig(t, rigOptions{})
	var stopped atomic.Bool
	var afterStop, okAfter atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for range 8 {
		wg.Go(func() {
			for i := 0; i < 400 && time.Now().Before(deadline); i++ {
				was := stopped.Load()
				_, a := r.order()
				if was {
					afterStop.Add(1)
					if a.status == http.StatusOK {
						okAfter.Add(1)
					}
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	r.srv.Gateway.Stop()
	stopped.Store(true)
	// Calls that passed the last check before Stop may still finish.
	time.Sleep(300 * time.Millisecond)
	hits := r.up.Count(http.MethodPost, orderPath)
	wg.Wait()
	if n := r.up.Count(http.MethodPost, orderPath) - hits; n != 0 {
		t.Errorf("%d orders reached the venue after the panic switch was acknowledged and in-flight calls ended", n)
	}
	if okAfter.Load() != 0 {
		t.Errorf("%d orders sent after Stop returned were answered 200", okAfter.Load())
	}
	if afterStop.Load() == 0 {
		t.Error("no order was sent after Stop: the test proved nothing")
	}
	t.Logf("%d orders before the switch, %d refused after it", hits, afterStop.Load())
	r.srv.Gateway.Resume()
	r.checkTrails()
	r.afterFault()
}
