package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemo runs the README's first command and checks the story it tells.
func TestDemo(t *testing.T) {
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if k == "TMPDIR" {
			return t.TempDir()
		}
		return ""
	}
	if err := run(context.Background(), []string{"keywarden", "demo"}, getenv, &out, &errb); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	s := out.String()
	for _, want := range []string{
		"read balances", "→ 200 allowed",
		"place a limit order        POST /api/v3/order                    → 200 allowed",
		"cancel it                  DELETE /api/v3/order                    → 200 allowed",
		"rule scope: scope withdraw is not allowed",
		"rule max_order_notional",
		"rule symbol: symbol VIABTC is not in symbols",
		"received 3 requests signed with the exchange key",
		"chain intact",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	if errb.Len() != 0 {
		t.Errorf("demo wrote to stderr:\n%s", errb.String())
	}
}
