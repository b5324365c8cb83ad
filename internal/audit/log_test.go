package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

func testPub() ed25519.PublicKey { return testKey().Public().(ed25519.PublicKey) }

// fixedClock returns a clock that advances one millisecond per call.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

func openTest(t *testing.T, o Options) *Log {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Signer == nil {
		o.Signer = testKey()
	}
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open(%s) = %v", o.Dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func intentRecord(i int) Record {
	return Record{Intent: &Intent{
		RequestID: fmt.Sprintf("req-%d", i),
		Client:    "kwc_bot1",
		Key:       "binance-main",
		Venue:     "binance",
		Method:    "POST",
		Path:      "/api/v3/order",
		SourceIP:  "10.0.0.7",
		Call: exchange.Call{
			Venue: "binance", Method: "POST", Path: "/api/v3/order",
			Endpoint: "POST /api/v3/order", Scope: exchange.ScopeTrade,
			Orders: []exchange.Order{{
				Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy,
				Type: "limit", Quantity: 0.01, Price: 65000.5, Notional: 650.005,
			}},
		},
		Decision: DecisionAllow,
		Rule:     "trade-btc",
		Body:     fmt.Sprintf("symbol=BTCUSDT&side=BUY&quantity=0.01&price=65000.5&n=%d", i),
	}}
}

func mustAppend(t *testing.T, l *Log, r Record) Receipt {
	t.Helper()
	rc, err := l.Append(context.Background(), r)
	if err != nil {
		t.Fatalf("Append(%v) = %v", r.Type, err)
	}
	return rc
}

func readAll(t *testing.T, dir string) []Record {
	t.Helper()
	var out []Record
	for r, err := range Search(dir, Filter{}) {
		if err != nil {
			t.Fatalf("Search(%s) = %v", dir, err)
		}
		out = append(out, r)
	}
	return out
}

// goldenRecords appends one record of every kind.
func goldenRecords(t *testing.T, l *Log) {
	mustAppend(t, l, intentRecord(1))
	mustAppend(t, l, Record{Outcome: &Outcome{RequestID: "req-1", Status: 200, VenueOrderID: "28457", LatencyMicros: 5123}})
	deny := intentRecord(2)
	deny.Intent.Decision = DecisionDeny
	deny.Intent.Reason = "notional over cap"
	deny.Intent.Call.Orders = nil
	deny.Intent.Call.Scope = exchange.ScopeWithdraw
	deny.Intent.Call.Transfer = &exchange.Transfer{Asset: "USDT", Amount: 1000, Address: "TXyz<&>", Network: "TRX"}
	mustAppend(t, l, deny)
	mustAppend(t, l, Record{Event: &Event{Kind: "key.rotate", Actor: "alice", Detail: map[string]string{"key": "binance-main", "b": "2", "a": "1"}}})
	mustAppend(t, l, Record{Outcome: &Outcome{RequestID: "req-3", Status: 502, Error: "upstream: connection reset", LatencyMicros: 30000000}})
}

func TestGoldenEncoding(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, Now: fixedClock(), CheckpointEvery: 3,
		HashKey: bytes.Repeat([]byte{9}, 32), HashFields: []string{FieldAddress}})
	goldenRecords(t, l)
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("segment differs from %s (-want +got):\n%s", golden, diff)
	}
	// The golden file itself verifies.
	vdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(vdir, segmentName(1)), want, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(vdir, testPub())
	if err != nil {
		t.Fatalf("Verify(golden) = %v", err)
	}
	if rep.Records != 7 || rep.Checkpoints != 2 {
		t.Errorf("Verify(golden) = %+v, want 7 records and 2 checkpoints", rep)
	}
}

// TestEncodingIsJSONMarshal checks that every stored line is exactly what
// encoding/json produces for the parsed Record, so the format is the Record
// type's JSON and any reader can re-derive it.
func TestEncodingIsJSONMarshal(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 2})
	goldenRecords(t, l)
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, segmentName(1)))
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		r, err := parseLine([]byte(line))
		if err != nil {
			t.Fatalf("line %d: parseLine = %v", i+1, err)
		}
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != line {
			t.Errorf("json.Marshal(line %d) =\n%s\nwant\n%s", i+1, got, line)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 1000})
	in := intentRecord(1)
	rc := mustAppend(t, l, in)
	out := Record{Outcome: &Outcome{RequestID: "req-1", Status: 201, VenueOrderID: "9", LatencyMicros: 12}}
	rc2 := mustAppend(t, l, out)
	if rc.Seq != 1 || rc2.Seq != 2 {
		t.Fatalf("Append seqs = %d, %d, want 1, 2", rc.Seq, rc2.Seq)
	}
	if got := l.Head(); got != rc2 {
		t.Errorf("Head() = %+v, want %+v", got, rc2)
	}
	recs := readAll(t, dir)
	if len(recs) != 2 {
		t.Fatalf("Search returned %d records, want 2", len(recs))
	}
	if recs[0].Type != TypeIntent || recs[0].RequestID != "req-1" || recs[0].Hash != rc.Hash {
		t.Errorf("record 1 = %+v", recs[0])
	}
	if diff := cmp.Diff(in.Intent, recs[0].Intent); diff != "" {
		t.Errorf("intent round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(out.Outcome, recs[1].Outcome); diff != "" {
		t.Errorf("outcome round trip (-want +got):\n%s", diff)
	}
	if recs[1].Prev != recs[0].Hash {
		t.Errorf("record 2 prev = %s, want %s", recs[1].Prev, recs[0].Hash)
	}
	if recs[0].Prev != genesisPrev {
		t.Errorf("record 1 prev = %s, want zeros", recs[0].Prev)
	}
	// Reopen continues the chain.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, Options{Dir: dir})
	rc3 := mustAppend(t, l2, Record{Event: &Event{Kind: "unseal", Actor: "op"}})
	if rc3.Seq != 4 { // 3 is the checkpoint Close wrote
		t.Errorf("Append after reopen seq = %d, want 4", rc3.Seq)
	}
	l2.Close()
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if rep.LastSeq != 5 || rep.Checkpoints != 2 {
		t.Errorf("Verify = %+v, want last seq 5 with 2 checkpoints", rep)
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openTest(t, Options{Dir: dir})
	mustAppend(t, l, intentRecord(1))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %v, want 0700", got)
	}
	fi, err = os.Stat(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("segment mode = %v, want 0600", got)
	}
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Errorf("second Open of a locked directory succeeded, want error")
	}
}

func TestAppendValidation(t *testing.T) {
	l := openTest(t, Options{})
	tests := []struct {
		name string
		r    Record
	}{
		{"no payload", Record{Type: TypeEvent}},
		{"two payloads", Record{Event: &Event{Kind: "x"}, Outcome: &Outcome{}}},
		{"type mismatch", Record{Type: TypeOutcome, Event: &Event{Kind: "x"}}},
		{"bad decision", Record{Intent: &Intent{Decision: "maybe"}}},
		{"checkpoint forged", Record{Type: TypeCheckpoint, Checkpoint: &Checkpoint{Count: 1}}},
		{"event without kind", Record{Event: &Event{}}},
		{"record too large", Record{Event: &Event{Kind: "x", Detail: map[string]string{"blob": strings.Repeat("&", maxLine/4)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rc, err := l.Append(context.Background(), tt.r); err == nil {
				t.Errorf("Append(%+v) = %+v, nil, want error", tt.r, rc)
			}
		})
	}
	if err := l.Healthy(); err != nil {
		t.Errorf("Healthy() after rejected records = %v, want nil", err)
	}
}

func TestTypeInference(t *testing.T) {
	l := openTest(t, Options{})
	deny := intentRecord(1)
	deny.Intent.Decision = DecisionDeny
	mustAppend(t, l, deny)
	mustAppend(t, l, intentRecord(2))
	recs := readAll(t, l.Dir())
	if recs[0].Type != TypeDenied || recs[1].Type != TypeIntent {
		t.Errorf("types = %s, %s, want denied, intent", recs[0].Type, recs[1].Type)
	}
}

func TestConcurrentAppend(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 50, SegmentSize: 16 << 10})
	const writers, each = 16, 40
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rc, err := l.Append(context.Background(), intentRecord(w*each+i))
				if err != nil {
					t.Errorf("Append = %v", err)
					return
				}
				seqs <- rc.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Errorf("seq %d acknowledged twice", s)
		}
		seen[s] = true
	}
	l.Close()
	rep, err := Verify(dir, testPub())
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if rep.Segments < 2 {
		t.Errorf("Verify = %+v, want several segments", rep)
	}
	var intents int
	for r := range Search(dir, Filter{Types: []Type{TypeIntent}}) {
		if !seen[r.Seq] {
			t.Errorf("record seq %d was never acknowledged", r.Seq)
		}
		intents++
	}
	if intents != writers*each {
		t.Errorf("intent records = %d, want %d", intents, writers*each)
	}
	if rep.Checkpoints < writers*each/(50+writers) { // a batch can overshoot by writers-1
		t.Errorf("checkpoints = %d, want at least %d", rep.Checkpoints, writers*each/(50+writers))
	}
}

func TestSegmentRotation(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, SegmentSize: 2000})
	for i := range 30 {
		mustAppend(t, l, intentRecord(i))
	}
	l.Close()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 5 {
		t.Fatalf("segments = %v, want at least 5", segs)
	}
	// Each segment starts where its name says and links to the previous one.
	var prevHash = genesisPrev
	for _, s := range segs {
		first, _ := segmentSeq(s)
		var n int
		readLines(filepath.Join(dir, s), func(line []byte, ln int, off int64, complete bool) error {
			r, err := parseLine(line)
			if err != nil {
				t.Fatalf("%s line %d: %v", s, ln, err)
			}
			if ln == 1 && (r.Seq != first || r.Prev != prevHash) {
				t.Errorf("%s starts with seq %d prev %s, want seq %d prev %s", s, r.Seq, r.Prev, first, prevHash)
			}
			prevHash = r.Hash
			n++
			return nil
		})
		if n == 0 {
			t.Errorf("segment %s is empty", s)
		}
	}
	if _, err := Verify(dir, testPub()); err != nil {
		t.Errorf("Verify = %v", err)
	}
	// Reopening reads only the tail segments and continues the chain.
	l2 := openTest(t, Options{Dir: dir, SegmentSize: 2000})
	before := l2.Head()
	rc := mustAppend(t, l2, intentRecord(99))
	l2.Close()
	if rc.Seq != before.Seq+1 {
		t.Errorf("Append after reopen = seq %d, want %d", rc.Seq, before.Seq+1)
	}
	if _, err := Verify(dir, testPub()); err != nil {
		t.Errorf("Verify after reopen = %v", err)
	}
}

func TestCheckpointInterval(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, CheckpointEvery: 1 << 20, CheckpointInterval: 20 * time.Millisecond})
	mustAppend(t, l, intentRecord(1))
	// Wait (bounded) for the timer-driven checkpoint.
	deadline := time.Now().Add(10 * time.Second)
	for l.Head().Seq < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	recs := readAll(t, dir)
	if len(recs) != 2 || recs[1].Type != TypeCheckpoint {
		t.Fatalf("records = %d (last %v), want an intent and a checkpoint", len(recs), recs[len(recs)-1].Type)
	}
	cp := recs[1].Checkpoint
	if cp.Count != 1 || cp.Head != recs[0].Hash || cp.KeyID != KeyID(testPub()) {
		t.Errorf("checkpoint = %+v, want count 1 head %s", cp, recs[0].Hash)
	}
}

// faultFile fails writes or flushes on demand.
type faultFile struct {
	File
	mu        sync.Mutex
	failWrite bool
	failSync  bool
}

func (f *faultFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWrite {
		n := len(b) / 2 // a torn write
		f.File.Write(b[:n])
		return n, errors.New("injected: no space left on device")
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSync {
		return errors.New("injected: input/output error")
	}
	return f.File.Sync()
}

func (f *faultFile) set(write, sync bool) {
	f.mu.Lock()
	f.failWrite, f.failSync = write, sync
	f.mu.Unlock()
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name         string
		write, flush bool
	}{
		{"write fails", true, false},
		{"flush fails", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var ff *faultFile
			l := openTest(t, Options{Dir: dir, RetryInterval: -1, WrapFile: func(f File) File {
				ff = &faultFile{File: f}
				return ff
			}})
			ok := mustAppend(t, l, intentRecord(1))
			ff.set(tt.write, tt.flush)
			if _, err := l.Append(context.Background(), intentRecord(2)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Append during fault = %v, want ErrUnavailable", err)
			}
			if err := l.Healthy(); err == nil {
				t.Errorf("Healthy() after fault = nil, want error")
			}
			// The fault is gone, but the log stays closed until Reopen.
			ff.set(false, false)
			if _, err := l.Append(context.Background(), intentRecord(3)); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Append after fault = %v, want ErrUnavailable", err)
			}
			if err := l.Reopen(); err != nil {
				t.Fatalf("Reopen() = %v", err)
			}
			if err := l.Healthy(); err != nil {
				t.Errorf("Healthy() after Reopen = %v", err)
			}
			rc := mustAppend(t, l, intentRecord(4))
			l.Close()
			rep, err := Verify(dir, testPub())
			if err != nil {
				t.Fatalf("Verify after recovery = %v", err)
			}
			recs := readAll(t, dir)
			if recs[0].Hash != ok.Hash {
				t.Errorf("first record hash changed")
			}
			if rep.LastSeq < rc.Seq {
				t.Errorf("Verify last seq = %d, want >= %d", rep.LastSeq, rc.Seq)
			}
			for _, r := range recs {
				if r.RequestID == "req-3" {
					t.Errorf("record refused while failed was written: %+v", r)
				}
			}
		})
	}
}

func TestFailedConcurrentAppendsFailFast(t *testing.T) {
	var ff *faultFile
	l := openTest(t, Options{RetryInterval: -1, WrapFile: func(f File) File { ff = &faultFile{File: f}; return ff }})
	ff.set(false, true)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			_, err := l.Append(context.Background(), intentRecord(i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Append = %v, want ErrUnavailable", err)
		}
	}
}

func TestClosed(t *testing.T) {
	l := openTest(t, Options{})
	l.Close()
	if _, err := l.Append(context.Background(), intentRecord(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestClockGoingBackwards(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	i := 0
	now := func() time.Time { // alternates between an hour ahead and now
		mu.Lock()
		defer mu.Unlock()
		i++
		if i%2 == 0 {
			return base.Add(time.Hour)
		}
		return base
	}
	l := openTest(t, Options{Dir: dir, Now: now, CheckpointEvery: 1 << 20, CheckpointInterval: time.Hour})
	for n := range 4 {
		mustAppend(t, l, intentRecord(n))
	}
	l.Close()
	if _, err := Verify(dir, testPub()); err != nil {
		t.Errorf("Verify = %v", err)
	}
	recs := readAll(t, dir)
	for _, r := range recs[1:] {
		if !r.Time.Equal(base.Add(time.Hour)) {
			t.Errorf("record %d time = %v, want %v (never backwards)", r.Seq, r.Time, base.Add(time.Hour))
		}
	}
}

func ed25519Key(t *testing.T, seed byte) ed25519.PublicKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
}
