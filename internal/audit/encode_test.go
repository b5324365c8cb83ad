package audit

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
)

// jsonBody is encodeBody as encoding/json would write it.
func jsonBody(t testing.TB, r *Record) string {
	t.Helper()
	name, v, err := r.payload()
	if err != nil {
		t.Fatal(err)
	}
	if r.Intent != nil {
		v = r.Intent.stored()
	}
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	typ, _ := json.Marshal(string(r.Type))
	out := `"type":` + string(typ)
	if r.RequestID != "" {
		rid, _ := json.Marshal(r.RequestID)
		out += `,"request_id":` + string(rid)
	}
	return out + `,"` + name + `":` + string(p)
}

// odd is a string with everything encoding/json escapes or replaces.
const odd = "a\"b\\c\x00\x01\x1f\b\f\n\r\t<>&\u2028\u2029\x7f é \xff\xfe 日本 \U0001F600"

func TestEncodeBodyMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		r    Record
	}{
		{"empty intent", Record{Type: TypeIntent, Intent: &Intent{}}},
		{"deny without call", Record{Type: TypeDenied, RequestID: "r1", Intent: &Intent{Decision: DecisionDeny, Rule: "scope", Reason: odd, SourceIP: "::1"}}},
		{"full intent", Record{Type: TypeIntent, RequestID: odd, Intent: &Intent{
			Client: "bot<1>", Key: "main", Venue: "binance", Method: "POST", Path: "/api/v3/order", SourceIP: "10.0.0.1",
			Call: exchange.Call{Venue: "binance", Method: "POST", Path: "/api/v3/order", Endpoint: "POST /api/v3/order", Scope: exchange.ScopeTrade,
				Orders: []exchange.Order{
					{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Buy, Type: "limit", Quantity: 0.001, Price: 64123.5, Notional: 64.1235, ClientOrderID: odd},
					{Action: exchange.ActionCancel},
					{Quantity: 1e-7, Price: 1e21, QuoteQuantity: 123456789012345678, Notional: -2.5e-10, Contracts: true, ReduceOnly: true},
					{Quantity: 1e-6, Price: 9.99e20, QuoteQuantity: math.SmallestNonzeroFloat64, Notional: math.MaxFloat64},
				},
				Transfer: &exchange.Transfer{Asset: "USDT", Amount: 100.25, Address: odd, Network: "ERC20", Memo: "m", Destination: "d"}},
			Decision: DecisionAllow, Rule: "r", Reason: "why", Body: `{"a":"<b>"}`}}},
		{"empty transfer", Record{Type: TypeIntent, Intent: &Intent{Call: exchange.Call{Transfer: &exchange.Transfer{}}, Decision: DecisionAllow}}},
		{"outcome", Record{Type: TypeOutcome, RequestID: "r2", Outcome: &Outcome{Status: 200, VenueOrderID: "123", LatencyMicros: 1500}}},
		{"outcome with error", Record{Type: TypeOutcome, RequestID: "r3", Outcome: &Outcome{Status: -1, LatencyMicros: -5, Error: odd}}},
		{"event", Record{Type: TypeEvent, Event: &Event{Kind: "panic", Actor: odd, Detail: map[string]string{"b": "2", "a": "<1>"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeBody(&tt.r)
			if err != nil {
				t.Fatalf("encodeBody() error = %v", err)
			}
			if diff := cmp.Diff(jsonBody(t, &tt.r), string(got)); diff != "" {
				t.Errorf("encodeBody() differs from encoding/json (-json +ours):\n%s", diff)
			}
		})
	}
}

func TestEncodeBodyRefusesNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		r := Record{Type: TypeIntent, Intent: &Intent{Call: exchange.Call{Orders: []exchange.Order{{Price: f}}}}}
		if _, err := encodeBody(&r); err == nil {
			t.Errorf("encodeBody(price %v) = nil error, want an error as encoding/json gives", f)
		}
		r = Record{Type: TypeIntent, Intent: &Intent{Call: exchange.Call{Transfer: &exchange.Transfer{Amount: f}}}}
		if _, err := encodeBody(&r); err == nil {
			t.Errorf("encodeBody(amount %v) = nil error, want an error", f)
		}
	}
}

// FuzzEncodeBody holds the hand-written encoder to encoding/json for any
// strings and numbers.
func FuzzEncodeBody(f *testing.F) {
	f.Add("bot1", "BTCUSDT", odd, 0.001, 64000.5, int64(1500))
	f.Add("", "", "", 1e-7, 1e21, int64(0))
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, x, y float64, n int64) {
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			return
		}
		recs := []Record{
			{Type: TypeIntent, RequestID: s3, Intent: &Intent{Client: s1, Path: s2, Reason: s3, Decision: s1,
				Call: exchange.Call{Endpoint: s2, Orders: []exchange.Order{{Symbol: s1, Quantity: x, Price: y, ClientOrderID: s3}},
					Transfer: &exchange.Transfer{Address: s3, Amount: y}}}},
			{Type: TypeOutcome, RequestID: s1, Outcome: &Outcome{Status: int(n % 1000), LatencyMicros: n, VenueOrderID: s2, Error: s3}},
		}
		for i := range recs {
			got, err := encodeBody(&recs[i])
			if err != nil {
				t.Fatal(err)
			}
			if want := jsonBody(t, &recs[i]); want != string(got) {
				t.Fatalf("encodeBody() = %s\nencoding/json = %s", got, want)
			}
		}
	})
}

// TestEncodeBodyOneAllocation: a typical gateway intent is encoded into a
// buffer sized once by intentSize, without growing it.
func TestEncodeBodyOneAllocation(t *testing.T) {
	for i, r := range []Record{intentRecord(7), {Type: TypeDenied, Intent: &Intent{Client: "kwc_bot1", Decision: DecisionDeny, Rule: "scope", Reason: "withdrawal not allowed"}}} {
		if r.Type == "" {
			r.Type = TypeIntent
		}
		r.RequestID = "req-7"
		if n := testing.AllocsPerRun(100, func() {
			if _, err := encodeBody(&r); err != nil {
				t.Fatal(err)
			}
		}); n != 1 {
			t.Errorf("record %d: encodeBody made %v allocations, want 1", i, n)
		}
	}
}
