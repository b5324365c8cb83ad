package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestListenKeysTable: tokens bind to their exchange key and credentials,
// keep-alives extend them by the venue's validity, they expire, a token
// seen with another exchange key starts over, the table is bounded, and
// the audit tag is keyed and never contains the token.
func TestListenKeysTable(t *testing.T) {
	l, err := newListenKeys()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok := "KWMARKERlistenkey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
	if !l.bind("binance", "binance", "main", "bot1", tok, nil, t0) {
		t.Fatal("bind refused on an empty table")
	}
	l.bind("binance", "binance", "main", "bot2", tok, nil, t0.Add(30*time.Minute)) // keep-alive by another credential
	got, ok := l.lookup("binance", tok, t0.Add(89*time.Minute))
	if !ok {
		t.Fatal("token gone before its extended validity")
	}
	want := ListenKey{Venue: "binance", Exchange: "binance", Key: "main", Clients: []string{"bot1", "bot2"},
		Tag: l.tag(tok), Expires: t0.Add(90 * time.Minute)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lookup (-want +got):\n%s", d)
	}
	if _, ok := l.lookup("binance", tok, t0.Add(91*time.Minute)); ok {
		t.Error("token alive after its validity")
	}
	if _, ok := l.lookup("binance-usdm", tok, t0); ok {
		t.Error("token found under another venue")
	}
	l.bind("binance", "binance", "other", "bot3", tok, nil, t0.Add(time.Minute))
	if got, _ := l.lookup("binance", tok, t0.Add(time.Minute)); got.Key != "other" || len(got.Clients) != 1 {
		t.Errorf("token reissued to another key: %+v, want only bot3 on key other", got)
	}

	tag := l.tag(tok)
	if !strings.HasPrefix(tag, "lk-hmac:") || strings.Contains(tag, "KWMARKER") || tag != l.tag(tok) || tag == l.tag(tok+"x") {
		t.Errorf("tag %q: want a stable keyed HMAC without the token", tag)
	}
	l2, _ := newListenKeys()
	if l2.tag(tok) == tag {
		t.Error("two tables share an HMAC key")
	}

	for i := range maxListenKeys + 10 {
		l.bind("binance", "binance", "main", "bot", fmt.Sprintf("tok%060d", i), nil, t0)
	}
	if n := len(l.m); n != maxListenKeys {
		t.Errorf("table holds %d tokens, want the bound %d", n, maxListenKeys)
	}
	if !l.bind("binance", "binance", "main", "bot", "fresh0123456789abcdef", nil, t0.Add(2*time.Hour)) {
		t.Error("a full table of expired tokens refused a new one")
	}
}
