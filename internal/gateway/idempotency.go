package gateway

import (
	"encoding/binary"
	"hash/maphash"
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
// An orderIDs is safe for concurrent use; reserve is atomic, so two
// identical orders in flight at once cannot both pass.
type orderIDs struct {
	window time.Duration
	max    int

	seeds [2]maphash.Seed

	mu      sync.Mutex
	m       map[orderIDKey]int64 // id -> when it was used (Unix ns)
	order   []usedID             // queue, oldest first from head
	head    int
	evicted uint64 // live entries dropped because the cache was full
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

// usedID is one queue slot: an id and when it was used. A slot whose id was
// released, or used again since, no longer matches the map and is skipped.
type usedID struct {
	k orderIDKey
	t int64 // Unix ns
}

// drop frees the queue's oldest slot and reports whether it was live.
func (c *orderIDs) drop() bool {
	e := c.order[c.head]
	live := false
	if t, ok := c.m[e.k]; ok && t == e.t {
		delete(c.m, e.k)
		live = true
	}
	c.order[c.head] = usedID{}
	c.head++
	if c.head == len(c.order) {
		c.order, c.head = c.order[:0], 0
	} else if c.head >= 1024 && c.head*2 >= len(c.order) {
		// Reuse the freed front: the queue never holds more than max.
		c.order = c.order[:copy(c.order, c.order[c.head:])]
		c.head = 0
	}
	return live
}

func newOrderIDs(window time.Duration, max int) *orderIDs {
	if window <= 0 || max <= 0 {
		return nil
	}
	return &orderIDs{window: window, max: max, m: map[orderIDKey]int64{},
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
		if _, seen := c.m[c.digest(venue, key, id)]; seen {
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
		if len(c.order)-c.head >= c.max && c.drop() {
			c.evicted++
		}
		c.m[k] = now.UnixNano()
		c.order = append(c.order, usedID{k, now.UnixNano()})
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
		if t, ok := c.m[k]; ok && t == at.UnixNano() {
			delete(c.m, k) // its queue slot is skipped when it comes up
		}
	}
}

// expire drops entries older than the window from the head of the queue.
func (c *orderIDs) expire(now time.Time) {
	for c.head < len(c.order) && now.UnixNano()-c.order[c.head].t >= int64(c.window) {
		c.drop()
	}
}

// stats returns the ids held and how many were dropped early.
func (c *orderIDs) stats() (held int, evicted uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.evicted
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
