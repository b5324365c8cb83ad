package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// digestOf returns a digest for tests: n in the home bits, shard in the
// shard byte, tag in the rest.
func digestOf(n uint64, shard byte, tag uint32) *[32]byte {
	var d [32]byte
	binary.LittleEndian.PutUint64(d[0:8], n)
	binary.LittleEndian.PutUint32(d[8:12], tag)
	d[12] = shard
	return &d
}

// TestReplayWindowEdges: a digest is refused for exactly its window (the
// cache may remember it one tick longer, never shorter), then accepted
// again once, and refused again for a new window.
func TestReplayWindowEdges(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name   string
		window time.Duration
		after  time.Duration
		seen   bool
	}{
		{"same instant", time.Minute, 0, true},
		{"just inside", time.Minute, time.Minute - time.Nanosecond, true},
		{"a tick after", time.Minute, time.Minute + 2*time.Millisecond, false},
		{"much later", time.Minute, 3 * time.Hour, false},
		{"a day's window, inside", 24 * time.Hour, 24*time.Hour - time.Millisecond, true},
		{"a year's window, inside", 365 * 24 * time.Hour, 364 * 24 * time.Hour, true},
		{"a year's window, after", 365 * 24 * time.Hour, 366 * 24 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newReplayCache(64, tt.window)
			d := digestOf(42, 3, 7)
			if c.seenDigest(d, t0) {
				t.Fatal("first sight reported as seen")
			}
			if got := c.seenDigest(d, t0.Add(tt.after)); got != tt.seen {
				t.Fatalf("after %v: seen = %v, want %v", tt.after, got, tt.seen)
			}
			if !tt.seen && !c.seenDigest(d, t0.Add(tt.after)) {
				t.Error("accepted again, then not remembered")
			}
		})
	}
}

// TestReplayClockGoesBack: a time earlier than one already seen counts as
// the latest one, so a clock stepped back forgets nothing early.
func TestReplayClockGoesBack(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newReplayCache(64, time.Minute)
	d := digestOf(1, 0, 1)
	c.seenDigest(d, t0.Add(time.Hour))
	if !c.seenDigest(d, t0) {
		t.Error("forgotten after the clock went back an hour")
	}
	if !c.seenDigest(d, t0.Add(time.Hour+59*time.Second)) {
		t.Error("forgotten inside its window")
	}
}

// TestReplayLongIdle: the 32-bit times do not wrap into a false match or a
// lost entry across long quiet periods (2^32 ms is about 50 days).
func TestReplayLongIdle(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newReplayCache(64, time.Minute)
	a, b := digestOf(5, 1, 1), digestOf(6, 1, 2)
	c.seenDigest(a, t0)
	wrap := time.Duration(1<<32) * time.Millisecond
	if c.seenDigest(a, t0.Add(wrap)) {
		t.Error("an entry 2^32 ticks old was reported as seen")
	}
	// Requests every 20 days: each sweep-less gap is below 2^30 ticks
	// (12.4 days) only sometimes; an entry kept busy must stay exact.
	now := t0.Add(wrap)
	for i := range 10 {
		now = now.Add(20 * 24 * time.Hour)
		if c.seenDigest(b, now) {
			t.Fatalf("gap %d: an old entry matched", i)
		}
		if !c.seenDigest(b, now.Add(30*time.Second)) {
			t.Fatalf("gap %d: forgotten inside its window", i)
		}
	}
}

// TestReplayMatchesModel runs random traffic, with repeats and collisions
// on home slots, through a small cache and a map that keeps every digest's
// time, and requires the same answer every time: no replay accepted, no
// fresh request refused, across growth, sweeps, reuse of expired slots and
// shrinking.
func TestReplayMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const window = 10 * time.Second
	c := newReplayCache(1<<14, window)
	type key struct {
		lo    uint64
		shard byte
		tag   uint32
	}
	first := map[key]time.Time{}
	now := time.Unix(1_700_000_000, 0)
	var keys []key
	for i := range 120_000 {
		// Bursts and lulls: the rate swings so tables grow and shrink.
		switch {
		case i%40_000 < 30_000:
			now = now.Add(time.Duration(rng.IntN(2000)) * time.Microsecond)
		default:
			now = now.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
		}
		var k key
		if len(keys) > 0 && rng.IntN(4) == 0 {
			k = keys[len(keys)-1-rng.IntN(min(len(keys), 5000))] // a repeat, recent or not
		} else {
			// Half of them on few homes, so chains collide; tags tell
			// them apart.
			k = key{lo: rng.Uint64(), shard: byte(rng.IntN(replayShards)), tag: rng.Uint32()}
			if rng.IntN(2) == 0 {
				k.lo = uint64(rng.IntN(64))
			}
			keys = append(keys, k)
		}
		t0, ok := first[k]
		want := ok && now.Sub(t0) < window
		got := c.seenDigest(digestOf(k.lo, k.shard, k.tag), now)
		if want && !got {
			t.Fatalf("op %d: a replay %v after first sight was accepted", i, now.Sub(t0))
		}
		if !want && got {
			// Allowed only one tick past the window.
			if !ok || now.Sub(t0) >= window+2*time.Millisecond {
				_, _, refused := c.stats()
				t.Fatalf("op %d: a fresh request was refused (refused for room: %d)", i, refused)
			}
			continue
		}
		if !want {
			first[k] = now
		}
	}
	used, slots, refused := c.stats()
	if refused != 0 {
		t.Errorf("%d requests refused for room", refused)
	}
	t.Logf("end: %d slots used of %d", used, slots)
}

// TestReplayFullFailsClosed fills a cache with requests inside their
// window: once there is no room it refuses new requests and counts them,
// forgets none of the ones it holds, and takes new ones again once the
// old ones have left their window.
func TestReplayFullFailsClosed(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newReplayCache(100, time.Minute)
	var held []*[32]byte
	for i := range 100_000 {
		d := digestOf(uint64(i)*0x9e3779b97f4a7c15, 0, uint32(i)) // all in one shard
		if c.seenDigest(d, t0) {
			break
		}
		held = append(held, d)
	}
	_, slots, refused := c.stats()
	if refused != 1 {
		t.Fatalf("refused %d, want 1 (the request that found no room)", refused)
	}
	if len(held) < 100/replayShards || len(held) >= 100_000 {
		t.Fatalf("held %d requests in one shard before refusing", len(held))
	}
	t.Logf("one shard held %d live requests (%d slots in all)", len(held), slots)
	// Still full at the end of the window: refused, and every held one is
	// still known.
	late := t0.Add(time.Minute - time.Millisecond)
	// The gateway answers the two refusals differently (503 for a full
	// memory, a replay error for a replay): check tells them apart.
	if replayed, full := c.checkDigest(digestOf(12345, 0, 1<<31), late); replayed || !full {
		t.Errorf("new request while the shard is full: replayed %v, full %v; want a full refusal, not a replay", replayed, full)
	}
	for i, d := range held {
		if replayed, full := c.checkDigest(d, late); !replayed || full {
			t.Fatalf("held request %d while the shard was full: replayed %v, full %v; want a replay", i, replayed, full)
		}
	}
	// Another shard is not affected.
	if c.seenDigest(digestOf(1, 5, 1), late) {
		t.Error("a request in another shard was refused")
	}
	// After the window the held ones are accepted again, and fill the
	// shard again; one more window later there is room.
	after := t0.Add(time.Minute + 10*time.Millisecond)
	for i, d := range held {
		if c.seenDigest(d, after) {
			t.Fatalf("held request %d still refused after its window", i)
		}
	}
	if !c.seenDigest(digestOf(12345, 0, 1<<31), after) {
		t.Error("a new request was taken while the shard is full again")
	}
	if c.seenDigest(digestOf(12345, 0, 1<<31), after.Add(time.Minute+10*time.Millisecond)) {
		t.Error("a new request was refused after the second window")
	}
	if _, _, refused := c.stats(); refused != 3 {
		t.Errorf("refused %d, want 3", refused)
	}
}

// TestReplaySizing: the tables start small, hold at least the entries
// asked for, and shrink again when traffic falls.
func TestReplaySizing(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	const n = 1 << 15
	c := newReplayCache(n, time.Minute)
	if _, slots, _ := c.stats(); slots != 0 {
		t.Fatalf("%d slots before any request", slots)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var d [32]byte
	for range n {
		binary.LittleEndian.PutUint64(d[0:], rng.Uint64())
		binary.LittleEndian.PutUint64(d[8:], rng.Uint64())
		if c.seenDigest(&d, t0) {
			t.Fatal("a fresh request was refused below the asked size")
		}
	}
	used, slots, _ := c.stats()
	if used != n || slots > 4*n {
		t.Errorf("after %d requests: %d used, %d slots (want %d used, at most %d slots)", n, used, slots, n, 4*n)
	}
	// Two windows later a trickle sweeps the tables down.
	now := t0.Add(2 * time.Minute)
	for range 2000 {
		now = now.Add(100 * time.Millisecond)
		binary.LittleEndian.PutUint64(d[0:], rng.Uint64())
		binary.LittleEndian.PutUint64(d[8:], rng.Uint64())
		c.seenDigest(&d, now)
	}
	if _, after, _ := c.stats(); after > replayShards*replayMinSlots*2 {
		t.Errorf("%d slots after traffic fell, want the tables shrunk (were %d)", after, slots)
	}
}

// BenchmarkReplayTable reports the heap a cache holding 650,000 requests
// (the 65 s window at 10k requests/s) takes per request, and the cost of
// one lookup and insert in it.
func BenchmarkReplayTable(b *testing.B) {
	const n = 650_000
	rng := rand.New(rand.NewPCG(5, 6))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newReplayCache(1<<19, 65*time.Second)
	now := time.Unix(1_700_000_000, 0)
	var d [32]byte
	for i := range n {
		binary.LittleEndian.PutUint64(d[0:], rng.Uint64())
		binary.LittleEndian.PutUint64(d[8:], rng.Uint64())
		if c.seenDigest(&d, now.Add(time.Duration(i)*100*time.Microsecond)) {
			b.Fatal("refused while filling")
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / n
	now = now.Add(65 * time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint64(d[0:], rng.Uint64())
		binary.LittleEndian.PutUint64(d[8:], rng.Uint64())
		// 10k requests/s: the oldest entries leave as new ones come.
		if c.seenDigest(&d, now.Add(time.Duration(i)*100*time.Microsecond)) {
			b.Fatal("refused at 10k requests/s")
		}
	}
	b.ReportMetric(perEntry, "B/entry")
	runtime.KeepAlive(c)
}

// TestReplayDigestIsTheRequests: check records the SHA-256 of the query, a
// zero byte, the body, then name, zero, value, zero for each auth header
// value, whatever the request before it left in the pooled buffer.
func TestReplayDigestIsTheRequests(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newReplayCache(1<<10, time.Minute)
	reqs := []*exchange.Request{
		{RawQuery: "a=" + strings.Repeat("x", 300), Body: []byte("b=1"),
			Header: http.Header{"X-Mbx-Apikey": {strings.Repeat("k", 64)}, "Content-Type": {"text/plain"}}},
		{Body: []byte("b=2"), Header: http.Header{"Ok-Access-Key": {"k1"}, "Ok-Access-Sign": {"s1", "s2"}}},
		{RawQuery: "q=1", Header: http.Header{}},
	}
	for i, r := range reqs {
		if replayed, full := c.check(r, now); replayed || full {
			t.Fatalf("request %d: first check = %v, %v, want new", i, replayed, full)
		}
		h := sha256.New()
		h.Write([]byte(r.RawQuery + "\x00"))
		h.Write(r.Body)
		for _, k := range authHeaders {
			for _, v := range r.Header[k] {
				h.Write([]byte(k + "\x00" + v + "\x00"))
			}
		}
		var want [32]byte
		h.Sum(want[:0])
		if !c.seenDigest(&want, now) {
			t.Errorf("request %d: its digest was not the one recorded", i)
		}
	}
}

// TestReplayCheckAllocatesNothing: hashing a request for the replay check
// reuses pooled state (the race detector's pool drops items at random, so
// this runs without it).
func TestReplayCheckAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	c := newReplayCache(1<<10, time.Minute)
	r := &exchange.Request{RawQuery: "a=" + strings.Repeat("x", 100), Body: []byte("b=1"),
		Header: http.Header{"X-Mbx-Apikey": {strings.Repeat("k", 64)}}}
	now := time.Unix(1_700_000_000, 0)
	c.check(r, now)
	if n := testing.AllocsPerRun(100, func() { c.check(r, now) }); n != 0 {
		t.Errorf("check of a known request: %v allocations, want 0", n)
	}
}
