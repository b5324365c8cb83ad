package vault

import (
	"context"
	"fmt"
	"testing"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/store/sqlite"
)

// BenchmarkSecretWithRecords measures PutSecret and Secret on a vault that
// already holds n sealed records (the version manifest grows with them),
// in memory and in SQLite (a durable commit per write).
func BenchmarkSecretWithRecords(b *testing.B) {
	for _, tc := range []struct {
		name string
		n    int
	}{{"memory", 10}, {"memory", 1000}, {"sqlite", 1000}} {
		name, n := tc.name, tc.n
		ctx := context.Background()
		var st store.Store = memory.New()
		if name == "sqlite" {
			db, err := sqlite.Open(ctx, sqlite.Options{Dir: b.TempDir() + "/data"})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			st = db
		}
		v, err := New(Options{Store: st})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if err := v.PutSecret(ctx, "client-secret", fmt.Sprintf("binance/kwc_%06d", i), []byte("s")); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("%s/put/%d", name, n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if err := v.PutSecret(ctx, "client-secret", fmt.Sprintf("binance/kwc_%06d", i%n), []byte("s")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%s/get/%d", name, n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := v.Secret(ctx, "client-secret", fmt.Sprintf("binance/kwc_%06d", i%n)); err != nil {
					b.Fatal(err)
				}
			}
		})
		v.Seal()
	}
}
