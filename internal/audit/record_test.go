package audit

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

// FuzzCodec checks that any record the log accepts encodes to one line that
// parses back, hash intact, to the same content.
func FuzzCodec(f *testing.F) {
	f.Add("req-1", "kwc_bot", "BTCUSDT", "a=1&signature=x", "boom", 0.5, int64(7))
	f.Add("\xff\xfe", "\u2028\n\"", "<&>", `{"a":"\u0000"}`, "\ufffd", 1e-9, int64(-1))
	f.Fuzz(func(t *testing.T, rid, client, symbol, body, msg string, qty float64, lat int64) {
		l := &Log{}
		in := Record{RequestID: rid, Intent: &Intent{
			Client: client, Decision: DecisionAllow, Body: body,
			Call: exchange.Call{Orders: []exchange.Order{{Symbol: symbol, Quantity: qty}}},
		}}
		out := Record{RequestID: rid, Outcome: &Outcome{Error: msg, LatencyMicros: lat}}
		for _, r := range []Record{in, out} {
			b, err := l.prepare(&r)
			if err != nil {
				return // NaN or infinite quantity: refused
			}
			line, hash := appendLine(nil, 3, time.Unix(1, 0), b, genesisPrev)
			if bytes.IndexByte(line, '\n') != len(line)-1 {
				t.Fatalf("encoded record is not one line: %q", line)
			}
			got, err := parseLine(line[:len(line)-1])
			if err != nil {
				t.Fatalf("parseLine(%q) = %v", line, err)
			}
			if got.Hash != hash || got.Seq != 3 {
				t.Errorf("parseLine = seq %d hash %s, want 3 %s", got.Seq, got.Hash, hash)
			}
			if r.Outcome != nil {
				want := *r.Outcome
				want.RequestID = r.RequestID
				if diff := cmp.Diff(&want, got.Outcome); diff != "" {
					t.Errorf("outcome round trip (-want +got):\n%s", diff)
				}
			}
			if got.RequestID != r.RequestID {
				t.Errorf("request id = %q, want %q", got.RequestID, r.RequestID)
			}
			if r.Intent != nil && (got.Intent == nil || got.Intent.Client != r.Intent.Client || got.Intent.Body != r.Intent.Body) {
				t.Errorf("intent round trip = %+v, want %+v", got.Intent, r.Intent)
			}
		}
	})
}
