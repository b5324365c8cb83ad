package transit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/seal/transit"
	"github.com/keywarden/keywarden/internal/seal/transit/transittest"
)

func TestKVRead(t *testing.T) {
	f := transittest.New(t)
	dir := t.TempDir()
	f.PutKV("secret", "exchanges/binance", map[string]any{"api_key": "AK1", "secret": "S1"})
	f.PutKV("secret", "exchanges/odd", map[string]any{"api_key": "AK1", "n": 3})
	tok := f.AddToken("kv:secret/exchanges/binance", "kv:secret/exchanges/odd", "kv:secret/exchanges/missing")
	kv, err := transit.NewKV(transit.Config{Address: f.URL, CAFile: f.CAFile(t, dir), Token: []byte(tok)})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	ctx := context.Background()
	got, err := kv.Read(ctx, "secret", "exchanges/binance")
	if err != nil {
		t.Fatalf("Read() = %v", err)
	}
	if diff := cmp.Diff(map[string]string{"api_key": "AK1", "secret": "S1"}, got); diff != "" {
		t.Errorf("Read() (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ path, want string }{
		{"exchanges/odd", `field "n" is not a string`},
		{"exchanges/missing", "no such secret"},
		{"exchanges/other", "permission denied"},
		{"../x", "without .."},
	} {
		_, err := kv.Read(ctx, "secret", tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Read(%s) = %v, want %q", tt.path, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("error holds the token: %v", err)
		}
	}
}
