package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/gateway"
)

// usageFlushEvery is how often the last use of exchange keys is written to
// the vault: a store write per key and interval, not per request.
const usageFlushEvery = 30 * time.Second

// keyMarker records a key's last use; *vault.Vault implements it.
type keyMarker interface {
	MarkUsed(ctx context.Context, ex, name string, t time.Time) error
}

// usage tracks when each exchange key last signed a call that reached its
// venue and was not refused for the key itself (401/403), and writes that
// to the vault now and then, so posture checks and reports see real last
// use instead of flagging busy keys as unused.
type usage struct {
	marker     keyMarker
	exchangeOf map[string]string // venue -> exchange
	log        *slog.Logger

	mu   sync.Mutex
	last map[[2]string]time.Time // {exchange, key} -> last use not yet written
}

func newUsage(m keyMarker, exchangeOf map[string]string, log *slog.Logger) *usage {
	return &usage{marker: m, exchangeOf: exchangeOf, log: log, last: map[[2]string]time.Time{}}
}

// observe notes o's key as used at now when o went to the venue with it.
func (u *usage) observe(o gateway.Observation, now time.Time) {
	if o.Key == "" || o.Decision != "allow" || o.Upstream <= 0 || o.Status == 401 || o.Status == 403 || o.Status >= 500 {
		return
	}
	ex := u.exchangeOf[o.Venue]
	if ex == "" {
		return
	}
	k := [2]string{ex, o.Key}
	u.mu.Lock()
	if now.After(u.last[k]) {
		u.last[k] = now
	}
	u.mu.Unlock()
}

// flush writes the pending last uses to the vault.
func (u *usage) flush(ctx context.Context) {
	u.mu.Lock()
	pending := u.last
	u.last = make(map[[2]string]time.Time, len(pending))
	u.mu.Unlock()
	for k, t := range pending {
		if err := u.marker.MarkUsed(ctx, k[0], k[1], t); err != nil {
			u.log.Warn("could not record a key's last use", "key", k[0]+"/"+k[1], "err", err)
		}
	}
}

// run flushes every interval until ctx ends, then once more.
func (u *usage) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			u.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			u.flush(ctx)
		}
	}
}
