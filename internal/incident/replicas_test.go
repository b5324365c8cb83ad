package incident

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/store/postgres"
	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
	"github.com/keywarden/keywarden/internal/store/sqlite"
)

// concurrentEdits has two managers (two replicas) add n notes each to one
// incident at the same time while also ticking every checklist item, and
// checks that no edit is lost.
func concurrentEdits(t *testing.T, a, b Store, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ma, mb := New(Options{Store: a}), New(Options{Store: b})
	in, err := ma.Open(ctx, "alice", "two replicas edit one incident")
	if err != nil {
		t.Fatal(err)
	}
	items := len(in.Checklist)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n+items)
	for r, m := range []*Manager{ma, mb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if _, err := m.Note(ctx, in.ID, fmt.Sprintf("replica-%d", r), fmt.Sprintf("note %d from replica %d", i, r)); err != nil {
					errs <- err
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; i < items; i += 2 {
				if _, err := m.Check(ctx, in.ID, i+1, fmt.Sprintf("replica-%d", r)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("edit failed: %v", err)
	}
	got, err := mb.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]bool{}
	for _, e := range got.Timeline {
		if e.Kind == KindNote {
			notes[e.Text] = true
		}
	}
	for r := range 2 {
		for i := range n {
			if text := fmt.Sprintf("note %d from replica %d", i, r); !notes[text] {
				t.Errorf("lost edit: %q is not on the timeline", text)
			}
		}
	}
	if len(notes) != 2*n {
		t.Errorf("%d distinct notes, want %d", len(notes), 2*n)
	}
	if p := got.Progress(); p != fmt.Sprintf("%d/%d", items, items) {
		t.Errorf("checklist progress %s, want every item done", p)
	}
	// One write per edit: the opening, 2n notes and one per checklist item.
	if want := uint64(1 + 2*n + items); got.Version != want {
		t.Errorf("version %d, want %d (one per write)", got.Version, want)
	}
}

func TestConcurrentEditsMemory(t *testing.T) {
	st := memory.New()
	concurrentEdits(t, st, st, 40)
}

func TestConcurrentEditsSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	concurrentEdits(t, db, db, 25)
}

func TestConcurrentEditsPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	a, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	concurrentEdits(t, a, b, 25)
}

// racyStore lets another writer change a record between the manager's read
// and its write, once per key, as a second replica would.
type racyStore struct {
	*memory.Store
	mu     sync.Mutex
	raced  map[string]bool
	meddle func(key string)
}

func (s *racyStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Store.Get(ctx, key)
	s.mu.Lock()
	first := !s.raced[key]
	s.raced[key] = true
	s.mu.Unlock()
	if first && err == nil && s.meddle != nil {
		s.meddle(key)
	}
	return b, err
}

func TestEditRetriesOnConflict(t *testing.T) {
	ctx := context.Background()
	mem := memory.New()
	other := New(Options{Store: mem})
	in, err := other.Open(ctx, "bob", "conflict")
	if err != nil {
		t.Fatal(err)
	}
	rs := &racyStore{Store: mem, raced: map[string]bool{}}
	rs.meddle = func(string) {
		if _, err := other.Note(ctx, in.ID, "bob", "written by the other replica"); err != nil {
			t.Errorf("other replica: %v", err)
		}
	}
	m := New(Options{Store: rs})
	got, err := m.Note(ctx, in.ID, "alice", "written here")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range got.Timeline {
		if e.Kind == KindNote {
			texts = append(texts, e.Text)
		}
	}
	if len(texts) != 2 || texts[0] != "written by the other replica" || texts[1] != "written here" {
		t.Errorf("notes %q, want the other replica's then ours", texts)
	}
	if got.Version != 3 {
		t.Errorf("version %d, want 3", got.Version)
	}
}

func TestStaleWriteIsAConflict(t *testing.T) {
	ctx := context.Background()
	for name, st := range map[string]Store{"memory": memory.New(), "plain": plainStore{memory.New()}} {
		t.Run(name, func(t *testing.T) {
			m := New(Options{Store: st})
			in, err := m.Open(ctx, "a", "stale")
			if err != nil {
				t.Fatal(err)
			}
			stale := *in
			if _, err := m.Note(ctx, in.ID, "a", "fresh"); err != nil {
				t.Fatal(err)
			}
			stale.Summary = "overwrites the note"
			if err := m.put(ctx, &stale); !errors.Is(err, ErrConflict) {
				t.Fatalf("put over a stale version = %v, want ErrConflict", err)
			}
			if stale.Version != in.Version {
				t.Errorf("a failed put changed the version to %d", stale.Version)
			}
		})
	}
}

// plainStore hides memory.Store's transactions.
type plainStore struct{ s *memory.Store }

func (p plainStore) Get(ctx context.Context, k string) ([]byte, error) { return p.s.Get(ctx, k) }
func (p plainStore) Put(ctx context.Context, k string, v []byte) error { return p.s.Put(ctx, k, v) }
func (p plainStore) List(ctx context.Context, k string) ([]string, error) {
	return p.s.List(ctx, k)
}

var _ store.Transactional = (*memory.Store)(nil)
