package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/store"
)

// Run is one posture check of the configured keys: every finding, with the
// keys checked. It never holds a secret.
type Run struct {
	Time     time.Time `json:"time"`
	Keys     []string  `json:"keys"` // "exchange/name"
	Findings []Finding `json:"findings"`
}

// Change kinds between two runs.
const (
	ChangeNew      = "new"      // a finding the previous run did not have
	ChangeWorsened = "worsened" // the same finding at a higher severity
	ChangeImproved = "improved" // the same finding at a lower severity
	ChangeResolved = "resolved" // a finding of a key still checked that is gone
)

// Change is how one finding changed from one run to the next.
type Change struct {
	Kind    string    `json:"kind"`
	Finding Finding   `json:"finding"`
	Before  *Severity `json:"before,omitempty"` // severity in the previous run
}

// Compare returns what changed from prev to cur. Findings are matched by
// key and code. A finding of a key that cur did not check (a key removed
// from the configuration) is not reported as resolved. Changes come sorted
// by key, then code.
func Compare(prev, cur Run) []Change {
	type id struct{ key, code string }
	before := map[id]Finding{}
	for _, f := range prev.Findings {
		k := id{f.Key, f.Code}
		if old, ok := before[k]; !ok || f.Severity > old.Severity {
			before[k] = f
		}
	}
	seen := map[id]bool{}
	var out []Change
	for _, f := range cur.Findings {
		k := id{f.Key, f.Code}
		if seen[k] {
			continue
		}
		seen[k] = true
		old, ok := before[k]
		switch {
		case !ok:
			out = append(out, Change{Kind: ChangeNew, Finding: f})
		case f.Severity > old.Severity:
			out = append(out, Change{Kind: ChangeWorsened, Finding: f, Before: &old.Severity})
		case f.Severity < old.Severity:
			out = append(out, Change{Kind: ChangeImproved, Finding: f, Before: &old.Severity})
		}
	}
	for k, f := range before {
		if !seen[k] && slices.Contains(cur.Keys, f.Key) {
			sev := f.Severity
			out = append(out, Change{Kind: ChangeResolved, Finding: f, Before: &sev})
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		if c := strings.Compare(a.Finding.Key, b.Finding.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Finding.Code, b.Finding.Code)
	})
	return out
}

// History keeps posture runs in a store, newest kept, oldest dropped
// beyond a limit. It is safe for concurrent use.
type History struct {
	st   store.Store
	keep int
	mu   sync.Mutex
}

const historyPrefix = "posture/runs/"

// DefaultKeep is how many runs a History keeps by default: 90 days of
// four runs a day.
const DefaultKeep = 360

// NewHistory returns the history kept in st; keep <= 0 means DefaultKeep.
func NewHistory(st store.Store, keep int) *History {
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &History{st: st, keep: keep}
}

// runKey sorts runs by time: nanoseconds since 1970, zero-padded.
func runKey(t time.Time) string { return fmt.Sprintf("%s%020d", historyPrefix, t.UnixNano()) }

// Add records r and drops the oldest runs beyond the limit.
func (h *History) Add(ctx context.Context, r Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("posture history: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.st.Put(ctx, runKey(r.Time), b); err != nil {
		return fmt.Errorf("posture history: %w", err)
	}
	keys, err := h.st.List(ctx, historyPrefix)
	if err != nil {
		return fmt.Errorf("posture history: %w", err)
	}
	for len(keys) > h.keep {
		if err := h.st.Delete(ctx, keys[0]); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("posture history: %w", err)
		}
		keys = keys[1:]
	}
	return nil
}

// Runs returns up to limit runs, newest first (limit <= 0: all kept). The
// dashboard and the admin API read the findings history through it.
func (h *History) Runs(ctx context.Context, limit int) ([]Run, error) {
	keys, err := h.st.List(ctx, historyPrefix)
	if err != nil {
		return nil, fmt.Errorf("posture history: %w", err)
	}
	slices.Reverse(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := []Run{}
	for _, k := range keys {
		b, err := h.st.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("posture history: %w", err)
		}
		var r Run
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("posture history %s: %w", k, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Latest returns the newest run, and false when there is none.
func (h *History) Latest(ctx context.Context) (Run, bool, error) {
	rs, err := h.Runs(ctx, 1)
	if err != nil || len(rs) == 0 {
		return Run{}, false, err
	}
	return rs[0], true, nil
}

// Snapshots returns the finding counts of the kept runs, oldest first, in
// the shape of a compliance report's history.
func (h *History) Snapshots(ctx context.Context) ([]Snapshot, error) {
	rs, err := h.Runs(ctx, 0)
	if err != nil {
		return nil, err
	}
	slices.Reverse(rs)
	out := make([]Snapshot, 0, len(rs))
	for _, r := range rs {
		c := map[string]int{}
		for _, f := range r.Findings {
			c[f.Severity.String()]++
		}
		out = append(out, Snapshot{Time: r.Time, Counts: c})
	}
	return out, nil
}
