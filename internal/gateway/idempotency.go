package gateway

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"net/http"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// RuleDuplicateOrder names the refusal of an order whose client order id
// was already used with the same exchange key on the same venue within the
// idempotency window.
const RuleDuplicateOrder = "duplicate_client_order_id"

// orderIDKey is one used client order id: a 128-bit digest of venue, key
// and id under two per-process random seeds, so an entry costs no strings
// (and keeps no request body alive) and ids cannot be chosen to collide.
// With 2^17 ids held, a new id falsely matches one with a chance of about
// 2^-111.
type orderIDKey [16]byte

// orderIDs remembers the client order ids of orders sent to venues, so a
// second order with the same id (a bot's blind retry after an unknown
// outcome, or a replayed order with a fresh signature) is refused before it
// can be a duplicate order. Memory is bounded: entries expire after window,
// and when max entries are held the oldest is dropped. It is per process.
//
// The ids are a ring in the order they were used (24 bytes each) and an
// open-addressed index of ring positions (4 bytes per slot, at most half
// full), both grown by doubling up to what max needs: about 32 bytes per id
// when full.
//
// An orderIDs is safe for concurrent use; reserve is atomic, so two
// identical orders in flight at once cannot both pass.
type orderIDs struct {
	window time.Duration
	max    int

	seeds [2]maphash.Seed

	mu      sync.Mutex
	ring    []usedID // oldest at head; len is the capacity, up to max
	head    int
	n       int      // ring slots in use from head, live or released
	index   []uint32 // ring position + 1 of each live id; 0: empty
	held    int      // live ids
	evicted uint64   // live entries dropped because the cache was full
}

// digest returns the key of venue, key and id.
func (c *orderIDs) digest(venue, key, id string) orderIDKey {
	var k orderIDKey
	for i, seed := range c.seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(venue)
		h.WriteByte(0)
		h.WriteString(key)
		h.WriteByte(0)
		h.WriteString(id)
		binary.LittleEndian.PutUint64(k[8*i:], h.Sum64())
	}
	return k
}

// usedID is one ring slot: an id and when it was used. A slot whose id was
// released is no longer in the index and is skipped.
type usedID struct {
	k orderIDKey
	t int64 // Unix ns
}

// home is k's first index slot.
func (c *orderIDs) home(k *orderIDKey) int {
	return int(binary.LittleEndian.Uint64(k[:8])) & (len(c.index) - 1)
}

// find returns the index slot holding k, or -1.
func (c *orderIDs) find(k *orderIDKey) int {
	if len(c.index) == 0 {
		return -1
	}
	mask := len(c.index) - 1
	for i := c.home(k); c.index[i] != 0; i = (i + 1) & mask {
		if c.ring[c.index[i]-1].k == *k {
			return i
		}
	}
	return -1
}

// insert points a free index slot from k's home at ring position pos.
func (c *orderIDs) insert(k *orderIDKey, pos int) {
	mask := len(c.index) - 1
	i := c.home(k)
	for c.index[i] != 0 {
		i = (i + 1) & mask
	}
	c.index[i] = uint32(pos + 1)
}

// remove empties index slot i and shifts the slots after it back, so every
// id stays reachable from its home.
func (c *orderIDs) remove(i int) {
	mask := len(c.index) - 1
	for j := (i + 1) & mask; c.index[j] != 0; j = (j + 1) & mask {
		h := c.home(&c.ring[c.index[j]-1].k)
		// The slot at j may move to i unless its home lies cyclically in
		// (i, j].
		if i <= j && (h <= i || h > j) || i > j && h <= i && h > j {
			c.index[i] = c.index[j]
			i = j
		}
	}
	c.index[i] = 0
}

// drop frees the ring's oldest slot and reports whether it was live.
func (c *orderIDs) drop() bool {
	e := &c.ring[c.head]
	live := false
	if i := c.find(&e.k); i >= 0 && int(c.index[i])-1 == c.head {
		c.remove(i)
		c.held--
		live = true
	}
	*e = usedID{}
	c.head = (c.head + 1) % len(c.ring)
	c.n--
	return live
}

// grow doubles the ring (up to max) and rebuilds the index at most half
// full.
func (c *orderIDs) grow() {
	size := min(c.max, max(64, 2*len(c.ring)))
	ring := make([]usedID, size)
	live := make([]bool, c.n)
	for i := range c.index {
		if c.index[i] != 0 {
			live[(int(c.index[i])-1-c.head+len(c.ring))%len(c.ring)] = true
		}
	}
	for i := range c.n {
		ring[i] = c.ring[(c.head+i)%len(c.ring)]
	}
	c.ring, c.head = ring, 0
	c.index = make([]uint32, 1<<bits.Len(uint(2*size-1)))
	for i := range c.n {
		if live[i] {
			c.insert(&c.ring[i].k, i)
		}
	}
}

func newOrderIDs(window time.Duration, max int) *orderIDs {
	if window <= 0 || max <= 0 {
		return nil
	}
	return &orderIDs{window: window, max: max,
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

// isNew says whether o places an order under a client order id. Cancels
// and amendments repeat an existing order's id, as they must.
func isNew(o *exchange.Order) bool { return o.Action == exchange.ActionNew && o.ClientOrderID != "" }

// reserve records the client order ids of the new orders in orders as used
// by key on venue at now. It records nothing and returns the first id seen
// before (within the window, or twice in orders) when there is one.
func (c *orderIDs) reserve(venue, key string, orders []exchange.Order, now time.Time) (dup string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	for i := range orders {
		if !isNew(&orders[i]) {
			continue
		}
		id := orders[i].ClientOrderID
		if k := c.digest(venue, key, id); c.find(&k) >= 0 {
			return id, false
		}
		for j := range orders[:i] {
			if isNew(&orders[j]) && orders[j].ClientOrderID == id {
				return id, false
			}
		}
	}
	for i := range orders {
		if !isNew(&orders[i]) {
			continue
		}
		k := c.digest(venue, key, orders[i].ClientOrderID)
		if c.n == len(c.ring) {
			if len(c.ring) < c.max {
				c.grow()
			} else if c.drop() {
				c.evicted++
			}
		}
		pos := (c.head + c.n) % len(c.ring)
		c.ring[pos] = usedID{k, now.UnixNano()}
		c.n++
		c.insert(&k, pos)
		c.held++
	}
	return "", true
}

// release forgets the ids that reserve recorded at at for key on venue:
// nothing was sent, or the venue refused the order outright, so using the
// id again is safe.
func (c *orderIDs) release(venue, key string, orders []exchange.Order, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range orders {
		if !isNew(&orders[i]) {
			continue
		}
		k := c.digest(venue, key, orders[i].ClientOrderID)
		if j := c.find(&k); j >= 0 && c.ring[c.index[j]-1].t == at.UnixNano() {
			c.remove(j) // its ring slot is skipped when it comes up
			c.held--
		}
	}
}

// expire drops entries older than the window from the head of the ring.
func (c *orderIDs) expire(now time.Time) {
	for c.n > 0 && now.UnixNano()-c.ring[c.head].t >= int64(c.window) {
		c.drop()
	}
}

// stats returns the ids held and how many were dropped early.
func (c *orderIDs) stats() (held int, evicted uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held, c.evicted
}

// claimOrderIDs refuses, with 409 in the venue's shape and a denial record
// naming RuleDuplicateOrder, a call that places an order under a client
// order id already used with the same exchange key on the same venue
// within the window: a blind retry after an unknown outcome (504) must not
// become a second order. Otherwise it reserves the call's ids and reports
// true; settleOrderIDs gives them back when nothing reached the venue.
func (g *Gateway) claimOrderIDs(st *state) bool {
	if g.orderIDs == nil || len(st.call.Orders) == 0 {
		return true
	}
	dup, ok := g.orderIDs.reserve(st.rt.Venue.Name, st.entry.Key, st.call.Orders, st.start)
	if ok {
		st.idsReserved = true
		return true
	}
	st.w = &statusOverride{ResponseWriter: st.w, status: http.StatusConflict}
	st.deny(&Denial{Rule: RuleDuplicateOrder, Reason: "client order id " + exchange.SafeName(dup) +
		" was already sent with key " + st.entry.Key + " in the last " + g.orderIDs.window.String() +
		"; check the order's state at the venue instead of sending it again"})
	st.obs.Status = http.StatusConflict
	return false
}

// settleOrderIDs releases the ids claimOrderIDs reserved when the call
// never went out or the venue refused it outright (a 4xx answer other than
// 408 and 409: no order exists). Anything else, an unknown outcome above
// all, keeps them for the window.
func (g *Gateway) settleOrderIDs(st *state) {
	if !st.idsReserved {
		return
	}
	s := st.obs.Status
	if !st.sent || s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusConflict {
		g.orderIDs.release(st.rt.Venue.Name, st.entry.Key, st.call.Orders, st.start)
	}
}
