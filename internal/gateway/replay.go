package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// replayCache remembers the digest of every signed request for a window, so
// the same signed bytes are accepted once. It is exact: an entry is never
// forgotten while it is in its window. It is bounded: when it holds as many
// requests still in their window as it has room for, it refuses new ones
// (fail closed) instead of forgetting any.
//
// Each of its shards is an open-addressed table (linear probing) of 16-byte
// slots: 96 bits of the request's SHA-256 digest and a 32-bit time. An
// expired slot is reused in place by an insert that passes it; when 3/4 of
// a shard's slots are taken, a sweep empties the expired ones and moves the
// others back toward their home slot, then the table grows (while more than
// half of it is live) or shrinks (while less than a sixteenth is). A table
// sized for the window at 10k requests/s, 650,000 entries, takes 16 MiB.
type replayCache struct {
	window time.Duration
	tick   time.Duration // resolution of the stored times
	wticks uint32        // a slot younger than this many ticks is live
	// maxSlots bounds each shard's table, a power of two.
	maxSlots int
	shards   [replayShards]replayShard
	refused  atomic.Uint64 // new requests refused because a shard was full
	// scratch holds *replayScratch: the hash state and a buffer the
	// query and header strings are gathered in, so that hashing a request
	// allocates nothing.
	scratch sync.Pool
}

type replayScratch struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte // Sum's destination: a local would escape
}

// maxReplayScratch caps a buffer kept for the next request.
const maxReplayScratch = 16 << 10

const (
	replayShards = 16
	// replayMinSlots is a shard's smallest table.
	replayMinSlots = 256
	// replayTickBits bounds the window in ticks, so a 32-bit time never
	// wraps while its slot can be compared (see replayShard.seen).
	replayTickBits = 28
)

// replaySlot is one table slot. It is empty when lo and hi are both zero;
// a digest that would read so is stored with hi = 1.
type replaySlot struct {
	lo uint64 // digest bits 0-63, also the slot's home
	hi uint32 // digest bits 64-95
	t  uint32 // ticks since the shard's base when first seen, modulo 2^32
}

type replayShard struct {
	mu    sync.Mutex
	slots []replaySlot // nil until the first request; len is a power of two
	used  int          // slots not empty, live or expired
	base  time.Time    // tick 0
	last  int64        // the latest tick seen: time never goes back here
	swept int64        // tick of the last sweep
}

// newReplayCache returns a cache that holds at least entries requests in
// their window (up to twice that: the tables are powers of two).
func newReplayCache(entries int, window time.Duration) *replayCache {
	if window <= 0 {
		window = time.Second
	}
	tick := time.Millisecond
	if w := time.Duration(1) << replayTickBits * time.Millisecond; window > w {
		tick = (window + (1 << replayTickBits) - 1) / (1 << replayTickBits)
	}
	c := &replayCache{window: window, tick: tick}
	// A slot first seen at tick a is live at tick b while b - a is below
	// this: the times are rounded down to ticks, so b - a can exceed the
	// true age by one tick.
	c.wticks = uint32((window+tick-1)/tick) + 1
	// A shard may fill 3/4 of its table: entries live slots need
	// entries*4/3 in all.
	per := (max(entries, 1)*4/3 + replayShards - 1) / replayShards
	c.maxSlots = max(replayMinSlots, 1<<bits.Len(uint(per-1)))
	return c
}

// seen records r and reports whether it was already recorded within the
// window. The digest covers the query, the body and every header a venue
// carries credentials in, but not the method or path: several venues
// (Binance, Bybit) sign without the path, so a captured signature replayed
// against another endpoint must count as the same request. It also reports
// true, refusing r, when r is new but its shard is full of requests still
// in their window.
func (c *replayCache) seen(r *exchange.Request, now time.Time) bool {
	replayed, full := c.check(r, now)
	return replayed || full
}

// check is seen with its two refusals apart: replayed when r was recorded
// within the window, full when r is new but could not be recorded.
func (c *replayCache) check(r *exchange.Request, now time.Time) (replayed, full bool) {
	// The digest of query, 0, body, then name, 0, value, 0 for each auth
	// header value, written in three parts.
	s, _ := c.scratch.Get().(*replayScratch)
	if s == nil {
		s = &replayScratch{h: sha256.New()}
	}
	s.h.Reset()
	s.buf = append(append(s.buf[:0], r.RawQuery...), 0)
	s.h.Write(s.buf)
	s.h.Write(r.Body)
	s.buf = s.buf[:0]
	for _, k := range authHeaders {
		for _, v := range r.Header[k] {
			s.buf = append(append(s.buf, k...), 0)
			s.buf = append(append(s.buf, v...), 0)
		}
	}
	s.h.Write(s.buf)
	s.h.Sum(s.sum[:0])
	sum := s.sum
	// The buffer held the request's signature and key id: wiped before
	// it is kept.
	clear(s.buf[:cap(s.buf)])
	if cap(s.buf) <= maxReplayScratch {
		c.scratch.Put(s)
	}
	return c.checkDigest(&sum, now)
}

// seenDigest is seen for a request's digest.
func (c *replayCache) seenDigest(sum *[32]byte, now time.Time) bool {
	replayed, full := c.checkDigest(sum, now)
	return replayed || full
}

// checkDigest is check for a request's digest.
func (c *replayCache) checkDigest(sum *[32]byte, now time.Time) (replayed, full bool) {
	lo := binary.LittleEndian.Uint64(sum[0:8])
	hi := binary.LittleEndian.Uint32(sum[8:12])
	if lo == 0 && hi == 0 {
		hi = 1
	}
	s := &c.shards[sum[12]%replayShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, full := s.seen(c, lo, hi, now)
	if full {
		c.refused.Add(1)
	}
	return seen, full
}

// ticks returns now in ticks since the shard's base, never less than the
// last tick it returned.
func (s *replayShard) ticks(c *replayCache, now time.Time) int64 {
	if s.slots == nil {
		// The base is one window back, so the first ticks are positive.
		s.base = now.Add(-c.window)
		s.slots = make([]replaySlot, min(replayMinSlots, c.maxSlots))
	}
	n := int64(now.Sub(s.base) / c.tick)
	return max(n, s.last)
}

// seen looks the digest up and inserts it when it is not live. full says
// it is new and there is no room for it.
//
// Why a 32-bit time is enough: every live slot is younger than wticks
// (at most 2^28+2) ticks. A shard is swept before any lookup that comes
// two windows or more after its last sweep (which also lets a table shrink
// when traffic falls), and emptied whole when its last request is a window
// old, so no slot it compares is 2^31 ticks old.
func (s *replayShard) seen(c *replayCache, lo uint64, hi uint32, now time.Time) (seen, full bool) {
	n := s.ticks(c, now)
	if n-s.last >= int64(c.wticks) {
		// Everything here is older than the window.
		if len(s.slots) > replayMinSlots {
			s.slots = make([]replaySlot, replayMinSlots)
		} else {
			clear(s.slots)
		}
		s.used, s.swept = 0, n
	} else if n-s.swept >= 2*int64(c.wticks) {
		s.sweep(c, n)
	}
	s.last = n
	t := uint32(n)
	for attempt := 0; ; attempt++ {
		mask := len(s.slots) - 1
		reuse := -1
		i := int(lo) & mask
		for ; ; i = (i + 1) & mask {
			e := &s.slots[i]
			if e.lo == 0 && e.hi == 0 {
				break
			}
			live := t-e.t < c.wticks
			if e.lo == lo && e.hi == hi {
				if live {
					return true, false
				}
				e.t = t // its own expired slot
				return false, false
			}
			if !live && reuse < 0 {
				reuse = i
			}
		}
		if reuse >= 0 {
			// An expired slot on the way: taking it keeps every chain
			// through it whole.
			s.slots[reuse] = replaySlot{lo: lo, hi: hi, t: t}
			return false, false
		}
		if s.used+1 <= len(s.slots)*3/4 {
			s.slots[i] = replaySlot{lo: lo, hi: hi, t: t}
			s.used++
			return false, false
		}
		if attempt > 0 || !s.makeRoom(c, n) {
			return false, true
		}
	}
}

// makeRoom sweeps the table and resizes it: it grows while more than half
// of it is live, up to maxSlots. It reports whether one more slot fits.
func (s *replayShard) makeRoom(c *replayCache, now int64) bool {
	s.sweep(c, now)
	size := len(s.slots)
	for s.used+1 > size/2 && size < c.maxSlots {
		size *= 2
	}
	if size != len(s.slots) {
		s.resize(size)
	}
	return s.used+1 <= len(s.slots)*3/4
}

// sweep empties the expired slots and moves every live one to the first
// free slot from its home, so lookups still find it. It shrinks a table
// whose live slots are fewer than a sixteenth of it.
func (s *replayShard) sweep(c *replayCache, now int64) {
	s.swept = now
	t := uint32(now)
	live := 0
	for i := range s.slots {
		e := &s.slots[i]
		if e.lo == 0 && e.hi == 0 {
			continue
		}
		if t-e.t >= c.wticks {
			*e = replaySlot{}
			continue
		}
		live++
	}
	s.used = live
	size := len(s.slots)
	for size > replayMinSlots && live*16 < size {
		size /= 2
	}
	if size != len(s.slots) {
		s.resize(size)
		return
	}
	// Walk once around from an empty slot (a table is never full), taking
	// out each live slot and putting it back from its home: the slots
	// walked so far are settled, so it lands at or before where it was.
	mask := len(s.slots) - 1
	start := 0
	for s.slots[start].lo != 0 || s.slots[start].hi != 0 {
		start++
	}
	for k := 1; k < len(s.slots); k++ {
		j := (start + k) & mask
		e := s.slots[j]
		if e.lo == 0 && e.hi == 0 {
			continue
		}
		s.slots[j] = replaySlot{}
		s.place(e)
	}
}

// resize moves the slots into a table of size slots.
func (s *replayShard) resize(size int) {
	old := s.slots
	s.slots = make([]replaySlot, size)
	for _, e := range old {
		if e.lo != 0 || e.hi != 0 {
			s.place(e)
		}
	}
}

// place puts e in the first empty slot from its home.
func (s *replayShard) place(e replaySlot) {
	mask := len(s.slots) - 1
	i := int(e.lo) & mask
	for s.slots[i].lo != 0 || s.slots[i].hi != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = e
}

// stats returns the slots taken (live or not yet swept), the slots
// allocated, and how many new requests were refused because a shard was
// full.
func (c *replayCache) stats() (used, slots int, refused uint64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		used += s.used
		slots += len(s.slots)
		s.mu.Unlock()
	}
	return used, slots, c.refused.Load()
}
