package exchange

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in      string
		want    Params
		wantErr string
	}{
		{"", nil, ""},
		{"symbol=BTCUSDT&side=BUY", Params{{"symbol", "BTCUSDT"}, {"side", "BUY"}}, ""},
		{"a=1&&b=%20x", Params{{"a", "1"}, {"b", " x"}}, ""},
		{"flag", Params{{"flag", ""}}, ""},
		{"quantity=1&quantity=1000", nil, "duplicate parameter"},
		{"a=%zz", nil, "malformed value encoding"},
		{"a=%ff", nil, "not valid UTF-8"},
		{"=1", nil, "empty parameter name"},
		{strings.Repeat("a=1&", MaxParams) + "z=1", nil, "too many parameters"},
	}
	for _, tt := range tests {
		got, err := ParseQuery(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseQuery(%.40q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			if e := AsError(err); e.Kind != ErrBadRequest {
				t.Errorf("ParseQuery(%.40q) kind = %v, want ErrBadRequest", tt.in, e.Kind)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseQuery(%q) error = %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseQuery(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestRemoveParams(t *testing.T) {
	tests := []struct{ in, want string }{
		{"timestamp=1&symbol=X&signature=abc", "symbol=X"},
		{"symbol=X&price=%2B1", "symbol=X&price=%2B1"},
		{"sig%6Eature=1&a=2", "a=2"},
		{"", ""},
		{"symbol=X&side=BUY", "symbol=X&side=BUY"},
		{"&symbol=X", "symbol=X"},
		{"symbol=X&", "symbol=X&"},
		{"symbol=X&&side=BUY", "symbol=X&&side=BUY"},
		{"a=1&timestamp=2&", "a=1&"},
		{"timestamp", ""},
		{"time+stamp=1&%zz=2&signature", "time+stamp=1&%zz=2"},
		{"signature=1&timestamp=2", ""},
	}
	for _, tt := range tests {
		if got := RemoveParams(tt.in, "timestamp", "signature"); got != tt.want {
			t.Errorf("RemoveParams(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// The byte form gives the same result, appended after what dst holds.
		if got := AppendWithoutParams([]byte("x:"), []byte(tt.in), "timestamp", "signature"); string(got) != "x:"+tt.want {
			t.Errorf("AppendWithoutParams(%q) = %q, want %q", tt.in, got, "x:"+tt.want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("MARKER-secret-1234")
	c := &Credential{Kind: KeyHMAC, APIKey: "id", Secret: s, Passphrase: Secret("MARKER-pass")}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", s, "cred", c)
	j, _ := json.Marshal(map[string]any{"s": s, "c": c})
	outs := []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, c, c, c), buf.String(), string(j)}
	for _, o := range outs {
		if strings.Contains(o, "MARKER") {
			t.Errorf("secret printed: %s", o)
		}
	}
	s.Zero()
	if !bytes.Equal(s, make([]byte, len(s))) {
		t.Error("Zero left secret bytes")
	}
}

func TestMACPool(t *testing.T) {
	p := NewMACPool(sha256.New, []byte("key"))
	want := HMACSHA256(nil, []byte("key"), []byte("message"))
	for i := 0; i < 3; i++ {
		m := p.Get()
		m.Write([]byte("message"))
		if got := m.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("pooled HMAC = %x, want %x", got, want)
		}
		p.Put(m)
	}
}

func TestParseScope(t *testing.T) {
	for _, s := range Scopes {
		if got, err := ParseScope(string(s)); err != nil || got != s {
			t.Errorf("ParseScope(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := ParseScope("admin"); err == nil {
		t.Error("ParseScope(admin) = nil error, want one")
	}
}

func BenchmarkParseQuery(b *testing.B) {
	q := "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseQuery(q); err != nil {
			b.Fatal(err)
		}
	}
}
