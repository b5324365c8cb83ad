package cluster

import (
	"context"
	"testing"

	"github.com/keywarden/keywarden/internal/store/postgres/pgtest"
)

// TestReadOnlyReachesEveryReplica: a client credential downgraded to
// read-only on one replica is read-only on the other, and restoring its
// trading there reaches the first, through the store's trigger alone (no
// explicit publish).
func TestReadOnlyReachesEveryReplica(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := startReplica(t, dsn, "a", 0), startReplica(t, dsn, "b", 0)
	c := issue(t, a)
	waitFor(t, "credential usable on b", func() bool { return usable(b, c) })
	readOnly := func(r *replica) bool {
		e, err := r.clients.Lookup(c.Venue, c.ID)
		return err == nil && e.ReadOnly != nil
	}
	if _, _, err := b.clients.SetReadOnly(context.Background(), c.Venue, c.ID, "automatic-response", "alert al-1"); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "read-only on a", func() bool { return readOnly(a) })
	if _, err := a.clients.RestoreTrading(context.Background(), c.Venue, c.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "trading restored on b", func() bool { return !readOnly(b) && usable(b, c) })
	t.Logf("the downgrade reached the other replica in %s", took)
}
