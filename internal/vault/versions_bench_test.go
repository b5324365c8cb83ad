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
// in memory and in SQLite (a durable commit per write). Each store and
// size is its own sub-benchmark, so -bench can pick one without building
// the others (for example -bench 'WithRecords/sqlite/1000/').
func BenchmarkSecretWithRecords(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		for _, n := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				benchSecretWithRecords(b, name, n)
			})
		}
	}
}

func benchSecretWithRecords(b *testing.B, name string, n int) {
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
	defer v.Seal()
	if _, err := v.Init(ctx, InitOptions{Passphrase: passphrase, KDF: &fastKDF}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := v.PutSecret(ctx, "client-secret", fmt.Sprintf("binance/kwc_%06d", i), []byte("s")); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("put", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := v.PutSecret(ctx, "client-secret", fmt.Sprintf("binance/kwc_%06d", i%n), []byte("s")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := v.Secret(ctx, "client-secret", fmt.Sprintf("binance/kwc_%06d", i%n)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
