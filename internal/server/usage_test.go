package server

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/gateway"
)

type fakeMarker struct {
	mu   sync.Mutex
	used map[string]time.Time
}

func (f *fakeMarker) MarkUsed(_ context.Context, ex, name string, t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used[ex+"/"+name] = t
	return nil
}

func (f *fakeMarker) snapshot() map[string]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range f.used {
		out[k] = v
	}
	return out
}

// TestUsageMarksKeysThatReachedTheVenue: a key counts as used when a call
// signed with it reached the venue and was not refused for the key; the
// latest use per key is written, once per flush.
func TestUsageMarksKeysThatReachedTheVenue(t *testing.T) {
	m := &fakeMarker{used: map[string]time.Time{}}
	u := newUsage(m, map[string]string{"binance": "binance", "binance-usdm": "binance", "okx": "okx"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	up := time.Millisecond
	for i, o := range []gateway.Observation{
		{Venue: "binance", Key: "main", Decision: "allow", Status: 200, Upstream: up},
		{Venue: "binance-usdm", Key: "main", Decision: "allow", Status: 400, Upstream: up}, // used: the venue read the key
		{Venue: "okx", Key: "bot", Decision: "deny", Status: 403},                          // never left keywarden
		{Venue: "okx", Key: "bot", Decision: "allow", Status: 401, Upstream: up},           // the venue refused the key
		{Venue: "okx", Key: "bot", Decision: "allow", Status: 200},                         // served from cache
		{Venue: "okx", Key: "bot", Decision: "allow", Status: 502, Upstream: up},           // the venue did not answer
		{Venue: "nowhere", Key: "x", Decision: "allow", Status: 200, Upstream: up},
	} {
		u.observe(o, t0.Add(time.Duration(i)*time.Second))
	}
	u.flush(context.Background())
	want := map[string]time.Time{"binance/main": t0.Add(time.Second)}
	if diff := cmp.Diff(want, m.snapshot()); diff != "" {
		t.Errorf("marked (-want +got):\n%s", diff)
	}
	// Nothing new: a flush writes nothing; an older use never goes back.
	m.used = map[string]time.Time{}
	u.flush(context.Background())
	u.observe(gateway.Observation{Venue: "okx", Key: "bot", Decision: "allow", Status: 200, Upstream: up}, t0.Add(time.Hour))
	u.observe(gateway.Observation{Venue: "okx", Key: "bot", Decision: "allow", Status: 200, Upstream: up}, t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.run(ctx, time.Hour) }()
	cancel()
	<-done // run flushes once more when stopped
	if diff := cmp.Diff(map[string]time.Time{"okx/bot": t0.Add(time.Hour)}, m.snapshot()); diff != "" {
		t.Errorf("marked after stop (-want +got):\n%s", diff)
	}
}
