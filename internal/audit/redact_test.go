package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		extra []string
		want  string
	}{
		{"empty", "", nil, ""},
		{"form signature", "symbol=BTCUSDT&quantity=1&timestamp=1&signature=abc123",
			nil, "symbol=BTCUSDT&quantity=1&timestamp=1&signature=%5BREDACTED%5D"},
		{"form api key and passphrase", "apiKey=K&passphrase=P&x=1",
			nil, "apiKey=%5BREDACTED%5D&passphrase=%5BREDACTED%5D&x=1"},
		{"form encoded name", "api%5Fsecret=S&x=1", nil, "api%5Fsecret=%5BREDACTED%5D&x=1"},
		{"form undecodable name dropped", "%zz=S&x=1", nil, "x=1"},
		{"form extra name", "nonce=1&otpcode=123", []string{"otp-code"}, "nonce=1&otpcode=%5BREDACTED%5D"},
		{"json flat", `{"symbol":"BTC","sign":"abc","size":"1"}`, nil,
			`{"symbol":"BTC","sign":"[REDACTED]","size":"1"}`},
		{"json nested object value", `{"a":1,"secret":{"k":"v","n":[1,2]},"b":true}`, nil,
			`{"a":1,"secret":"[REDACTED]","b":true}`},
		{"json nested member", `{"req":{"api_key":"K","x":null},"list":[{"Signature":"s"},3]}`, nil,
			`{"req":{"api_key":"[REDACTED]","x":null},"list":[{"Signature":"[REDACTED]"},3]}`},
		{"json numbers kept exactly", `{"qty":0.100000000000000001,"big":12345678901234567890}`, nil,
			`{"qty":0.100000000000000001,"big":12345678901234567890}`},
		{"json array top", `[{"password":"p"},{"x":"y"}]`, nil, `[{"password":"[REDACTED]"},{"x":"y"}]`},
		{"json unparseable", `{"secret":"abc"`, nil, unparseableBody},
		{"json garbage", `{"a":}`, nil, unparseableBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Redact([]byte(tt.body), tt.extra...)); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func FuzzRedactJSON(f *testing.F) {
	f.Add([]byte(`{"a":{"secret":[1,{"b":2}]},"c":"d"}`))
	f.Add([]byte(`[1,"signature",{"signature":"x"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := Redact(b)
		if len(bytes.TrimSpace(b)) > 0 && (b[0] == '{' || b[0] == '[') && string(out) != unparseableBody {
			// Redacted JSON is still JSON.
			if !json.Valid(out) {
				t.Errorf("Redact(%q) = %q, not valid JSON", b, out)
			}
		}
	})
}

// TestSecretHygiene appends records whose inputs carry a marker secret in
// every place a careless caller might put one, and checks that the marker
// never reaches the log files.
func TestSecretHygiene(t *testing.T) {
	const marker = "CANARY-s3cr3t-7f1e"
	dir := t.TempDir()
	l := openTest(t, Options{Dir: dir, HashKey: bytes.Repeat([]byte{1}, 32),
		HashFields: []string{FieldClient, FieldKey, FieldAddress, "api_key"}})
	bodies := []string{
		"symbol=BTCUSDT&signature=" + marker,
		"secret=" + marker + "&x=1",
		`{"instId":"BTC-USDT","passphrase":"` + marker + `"}`,
		`{"nested":{"apiSecret":"` + marker + `"}}`,
		`{"sign":"` + marker + `"`, // truncated JSON
		"timestamp=1&X-MBX-APIKEY=" + marker,
	}
	for i, b := range bodies {
		r := intentRecord(i)
		r.Intent.Body = b
		r.Intent.Client = marker // hashed
		r.Intent.Call.Transfer = &exchange.Transfer{Address: marker, Memo: marker}
		mustAppend(t, l, r)
	}
	mustAppend(t, l, Record{Event: &Event{Kind: "key.add", Detail: map[string]string{
		"api_key": marker, "secret": marker, "Passphrase": marker, "note": "ok",
	}}})
	l.Close()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), marker) {
			t.Errorf("%s contains the secret marker", e.Name())
		}
	}
	// Hashed values match HashValue, and Search finds them by clear value.
	n := 0
	for r := range Search(dir, Filter{Client: marker, HashKey: bytes.Repeat([]byte{1}, 32)}) {
		if r.Intent.Client != HashValue(bytes.Repeat([]byte{1}, 32), marker) {
			t.Errorf("stored client = %q, want the keyed hash", r.Intent.Client)
		}
		n++
	}
	if n != len(bodies) {
		t.Errorf("Search by hashed client found %d records, want %d", n, len(bodies))
	}
}

func TestHashFieldsNeedKey(t *testing.T) {
	if _, err := Open(Options{Dir: t.TempDir(), HashFields: []string{FieldClient}}); err == nil {
		t.Errorf("Open with HashFields and no HashKey succeeded, want error")
	}
}

func TestAppendRedactsBody(t *testing.T) {
	l := openTest(t, Options{})
	r := intentRecord(1)
	r.Intent.Body = "a=1&signature=deadbeef"
	mustAppend(t, l, r)
	recs := readAll(t, l.Dir())
	if got, want := recs[0].Intent.Body, "a=1&signature=%5BREDACTED%5D"; got != want {
		t.Errorf("stored body = %q, want %q", got, want)
	}
}

func TestOptionsNeverPrintKeys(t *testing.T) {
	const marker = "KEYMARKER"
	o := Options{Dir: "/x", Signer: testKey(), HashKey: []byte(marker + marker)}
	f := Filter{HashKey: []byte(marker)}
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", o, o, o, o),
		fmt.Sprintf("%v %+v %#v %s", f, f, f, f),
		fmt.Sprintf("%x", []byte(fmt.Sprint(o))),
	} {
		if strings.Contains(s, marker) || strings.Contains(s, fmt.Sprint([]byte(testKey()))) {
			t.Errorf("formatted options leak a key: %s", s)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("open", "opts", o)
	if strings.Contains(buf.String(), marker) || !strings.Contains(buf.String(), Redacted) {
		t.Errorf("logged options = %s, want the keys redacted", buf.String())
	}
}

// TestRedactStringAgrees checks the fast path against Redact.
func TestRedactStringAgrees(t *testing.T) {
	for _, body := range []string{
		"a=1&b=2", "a=1&&b=2", "a=1&signature=x", "api%4Bey=1", "x+y=1", "A-PI_KEY=3", "=1", "a", " a=1 ",
		`{"a":1}`, "", "  ",
	} {
		if got, want := redactString(body), string(Redact([]byte(body))); got != want {
			t.Errorf("redactString(%q) = %q, want %q (as Redact)", body, got, want)
		}
	}
}
