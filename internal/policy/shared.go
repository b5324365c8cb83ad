package policy

import (
	"context"
	"fmt"
	"time"
)

// SharedWindows keeps the sums of the rolling windows where several
// engines see them, so that gateway replicas enforce one cap together
// instead of one cap each. The in-memory Limiter stays the default; a
// shared implementation (cluster.Windows on PostgreSQL) is passed to
// Engine.CheckShared.
//
// Reserve must be atomic across all of uses: when every window allows its
// use (used + Notional <= MaxNotional and used + Orders <= MaxOrders, a zero
// cap meaning none), it records all of them and returns a func that gives
// them back; otherwise it records none and returns the index in uses of a
// window that refused, with what that window had used. An implementation
// that cannot tell returns an error, and the call is denied (fail closed).
// The check is on the request's hot path: Reserve bounds its own wait.
type SharedWindows interface {
	Reserve(ctx context.Context, at time.Time, uses []WindowUse) (release func(), refused *WindowRefusal, err error)
}

// WindowUse is what one call adds to one rolling window. Amounts are in
// policy units (1e-8 of the policy's currency).
type WindowUse struct {
	// Key names the window and its subject: policy, window index, and the
	// client credential or exchange key it counts.
	Key         string
	Duration    time.Duration
	MaxNotional int64
	MaxOrders   int
	Notional    int64
	Orders      int
}

// WindowRefusal says which window refused a use and what it had used.
type WindowRefusal struct {
	Index        int
	UsedNotional int64
	UsedOrders   int
}

// CheckShared is Check with the policy's windows also enforced in shared:
// the local Limiter decides first (open orders stay per engine), then the
// call's use of every window is reserved in shared, all or nothing. The
// returned release gives the shared budget back; call it exactly when the
// Reservation is released (never after Commit). It is nil when the call
// reserved nothing in shared.
func (e *Engine) CheckShared(shared SharedWindows, name string, in Input) (*Reservation, func(), error) {
	r, err := e.Check(name, in)
	if err != nil || shared == nil || r == nil {
		return r, nil, err
	}
	return e.reserveShared(shared, name, in, r)
}

// reserveShared is CheckShared's part after Check allowed the call with
// reservation r. A function of its own, so that in is copied to the heap
// only when shared windows are in use (the usage count takes its address).
func (e *Engine) reserveShared(shared SharedWindows, name string, in Input, r *Reservation) (*Reservation, func(), error) {
	p := e.policies[name]
	e.prepare(&in)
	var c checkCtx
	p.newCtx(&c, &in)
	notional, orders, _ := p.usage(&c)
	if orders == 0 || len(p.windows) == 0 {
		return r, nil, nil
	}
	uses := make([]WindowUse, 0, len(p.windows))
	for i := range p.windows {
		w := &p.windows[i]
		kind, subject := "client", in.Client
		if w.perKey {
			kind, subject = "key", in.Key
		}
		uses = append(uses, WindowUse{
			Key:      fmt.Sprintf("%s/%d/%s/%s", p.name, i, kind, subject),
			Duration: w.dur, MaxNotional: int64(w.maxNotional), MaxOrders: w.maxOrders,
			Notional: int64(notional), Orders: orders,
		})
	}
	release, refused, err := shared.Reserve(context.Background(), in.Now, uses)
	if err != nil || refused != nil {
		r.Release()
		e.allowed.Add(^uint64(0)) // Check counted it as allowed
	}
	if err != nil {
		return nil, nil, e.count(p.deny("window", "shared window state unavailable: %v", err))
	}
	if refused != nil {
		w, u := &p.windows[refused.Index], uses[refused.Index]
		used := units(refused.UsedNotional)
		if w.maxNotional > 0 && used+notional > w.maxNotional {
			return nil, nil, e.count(p.deny("window_notional", "notional in %s would reach %s%s (%s used on all replicas + %s this call), over the window's max_notional %s",
				fmtDur(w.dur), used+notional, p.cur(), used, notional, w.maxNotional))
		}
		return nil, nil, e.count(p.deny("window_orders", "orders in %s would reach %d (%d used on all replicas + %d this call), over the window's max_orders %d",
			fmtDur(w.dur), refused.UsedOrders+u.Orders, refused.UsedOrders, u.Orders, w.maxOrders))
	}
	return r, release, nil
}
