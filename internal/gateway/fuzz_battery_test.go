package gateway

import (
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

// FuzzCleanPath (spec/security.md Z1): a path the gateway routes is
// canonical — no dot, empty or encoded segment, no control byte — so it
// names exactly one endpoint; and every such path is one the shared path
// check accepts too.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/binance/api/v3/order", "/binance/../okx/x", "/binance/api/%2e%2e%2fv3", "/binance//x", "/binance/./x",
		"/binance/x/", `/binance\x`, "/binance/x;y", "/binance/acc\x00ount", "/binance/acc\xffount", "/", "",
		"/binance/api@evil.example/v3", "/binance/%252e", "/binance/v1:sub~x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !cleanPath(p) {
			return
		}
		if p == "/" {
			return
		}
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("cleanPath accepted %q with segment %q", p, seg)
			}
		}
		if strings.ContainsAny(p, "%\\;@?#\x00\r\n ") {
			t.Fatalf("cleanPath accepted %q", p)
		}
		if err := exchange.CheckPath(p, 1<<20); err != nil {
			t.Fatalf("cleanPath accepts %q but exchange.CheckPath refuses it: %v", p, err)
		}
	})
}
