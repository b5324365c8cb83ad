package exchange

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		maxDepth int
		want     any
		wantErr  error
	}{
		{"object", `{"a":1,"b":"2","c":[true,null]}`, 32,
			map[string]any{"a": json.Number("1"), "b": "2", "c": []any{true, nil}}, nil},
		{"empty array is not nil", `[]`, 32, []any{}, nil},
		{"same key in sibling objects", `[{"a":1},{"a":2}]`, 32,
			[]any{map[string]any{"a": json.Number("1")}, map[string]any{"a": json.Number("2")}}, nil},
		{"number kept exact", `12345678901234567890.123456789`, 32, json.Number("12345678901234567890.123456789"), nil},
		{"surrounding space", " {\"a\":1}\n", 32, map[string]any{"a": json.Number("1")}, nil},
		{"duplicate key", `{"a":1,"a":2}`, 32, nil, ErrJSONDuplicateKey},
		{"nested duplicate", `[{"a":1},{"b":{"c":1,"c":2}}]`, 32, nil, ErrJSONDuplicateKey},
		{"escaped duplicate", `{"a":1,"\u0061":2}`, 32, nil, ErrJSONDuplicateKey},
		{"case variants are distinct", `{"a":1,"A":2}`, 32,
			map[string]any{"a": json.Number("1"), "A": json.Number("2")}, nil},
		{"trailing value", `{"a":1}{"a":1}`, 32, nil, ErrJSONTrailing},
		{"trailing garbage", `1 x`, 32, nil, ErrJSONTrailing},
		{"truncated", `{"a":1`, 32, nil, ErrJSONSyntax},
		{"NaN", `{"a":NaN}`, 32, nil, ErrJSONSyntax},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", 32, nil, ErrJSONUTF8},
		{"empty", ``, 32, nil, ErrJSONSyntax},
		{"stray close", `]`, 32, nil, ErrJSONSyntax},
		{"at depth limit", `[[1]]`, 2, []any{[]any{json.Number("1")}}, nil},
		{"past depth limit", `[[[]]]`, 2, nil, ErrJSONTooDeep},
		{"deep objects", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), 32, nil, ErrJSONTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSON([]byte(tt.in), tt.maxDepth)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeJSON(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeJSON(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if cerr := CheckJSON([]byte(tt.in), tt.maxDepth); !errors.Is(cerr, tt.wantErr) {
				t.Errorf("CheckJSON(%q) = %v, want %v", tt.in, cerr, tt.wantErr)
			}
		})
	}
}

func TestDecodeJSONFold(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr error
	}{
		{"distinct keys", `{"qty":"1","price":"2"}`,
			map[string]any{"qty": "1", "price": "2"}, nil},
		{"same key in sibling objects", `[{"Qty":1},{"qty":2}]`,
			[]any{map[string]any{"Qty": json.Number("1")}, map[string]any{"qty": json.Number("2")}}, nil},
		{"exact duplicate", `{"qty":"1","qty":"2"}`, nil, ErrJSONDuplicateKey},
		{"case variant", `{"qty":"1","Qty":"100"}`, nil, ErrJSONDuplicateKey},
		{"upper case variant", `{"QTY":"1","qty":"100"}`, nil, ErrJSONDuplicateKey},
		{"nested case variant", `{"list":[{"size":"1","SIZE":"9"}]}`, nil, ErrJSONDuplicateKey},
		{"long s folds to s", `{"side":"buy","\u017fide":"sell"}`, nil, ErrJSONDuplicateKey},
		{"kelvin sign folds to k", `{"kind":1,"\u212aind":2}`, nil, ErrJSONDuplicateKey},
		{"non-ASCII case variant", `{"é":1,"É":2}`, nil, ErrJSONDuplicateKey},
		{"different letters", `{"a":1,"b":2,"ab":3}`,
			map[string]any{"a": json.Number("1"), "b": json.Number("2"), "ab": json.Number("3")}, nil},
		{"still strict", `{"a":1}x`, nil, ErrJSONTrailing},
		{"still depth bounded", strings.Repeat("[", 40) + strings.Repeat("]", 40), nil, ErrJSONTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSONFold([]byte(tt.in), MaxJSONDepth)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeJSONFold(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeJSONFold(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestFoldKeyMatchesEqualFold(t *testing.T) {
	keys := []string{"a", "A", "qty", "QTY", "Qty", "s", "S", "\u017f", "k", "K", "\u212a",
		"é", "É", "ß", "ẞ", "σ", "Σ", "ς", "", "a\u0301", "size", "\u017fize", "ǅ", "ǆ", "Ǆ"}
	for _, a := range keys {
		for _, b := range keys {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q) == foldKey(%q) is %v, want %v", a, b, got, want)
			}
		}
	}
}

func TestDecodeJSONDuplicateKeyMessage(t *testing.T) {
	_, err := DecodeJSON([]byte("{\"k\\u0001\":1,\"k\\u0001\":2}"), MaxJSONDepth)
	if got, want := err.Error(), `duplicate JSON key "k?"`; got != want {
		t.Errorf("DecodeJSON(duplicate) error = %q, want %q", got, want)
	}
}

func TestJSONString(t *testing.T) {
	tests := []struct {
		in     any
		want   string
		wantOK bool
	}{
		{"1.5", "1.5", true},
		{json.Number("2e3"), "2e3", true},
		{true, "true", true},
		{false, "false", true},
		{nil, "", false},
		{map[string]any{}, "", false},
	}
	for _, tt := range tests {
		got, ok := JSONString(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("JSONString(%v) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestRemoveJSONMembers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		names   []string
		want    string
		wantErr bool
	}{
		{"first", `{"nonce":"1","pair":"XBTUSD"}`, []string{"nonce"}, `{"pair":"XBTUSD"}`, false},
		{"middle", `{"a":1, "nonce":"1", "b":2}`, []string{"nonce"}, `{"a":1, "b":2}`, false},
		{"last", `{"a":1,"nonce":"1"}`, []string{"nonce"}, `{"a":1}`, false},
		{"only", `{ "nonce" : "1" }`, []string{"nonce"}, `{  }`, false},
		{"several", `{"otp":"9","a":{"nonce":1},"nonce":"1"}`, []string{"nonce", "otp"}, `{"a":{"nonce":1}}`, false},
		{"absent", `{"a":1}`, []string{"nonce"}, `{"a":1}`, false},
		{"not an object", `[1]`, []string{"nonce"}, "", true},
		{"malformed", `{"a":}`, []string{"nonce"}, "", true},
		{"too many", `{` + strings.Repeat(`"n":1,`, 9) + `"n":1}`, []string{"n"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RemoveJSONMembers([]byte(tt.in), tt.names...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("RemoveJSONMembers(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("RemoveJSONMembers(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPrependJSONMember(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{`{"a":1}`, `{"nonce":"7","a":1}`, false},
		{`{}`, `{"nonce":"7"}`, false},
		{` { "a" : 1 }`, ` {"nonce":"7", "a" : 1 }`, false},
		{`[]`, "", true},
		{`{"a"`, "", true},
	}
	for _, tt := range tests {
		got, err := PrependJSONMember([]byte(tt.in), `"nonce":"7"`)
		if (err != nil) != tt.wantErr {
			t.Fatalf("PrependJSONMember(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
		}
		if string(got) != tt.want {
			t.Errorf("PrependJSONMember(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[{"a":1},{"a":2}]`, `{"a":1,"a":2}`, `[[[]]]`, "\"\xff\"", `1 2`, `{"nonce":"1","b":[1]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeJSON(b, 8)
		if err != nil {
			return
		}
		// Whatever DecodeJSON accepts, encoding/json accepts with the same meaning.
		var std any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("DecodeJSON accepted %q, encoding/json rejects it: %v", b, err)
		}
		if diff := cmp.Diff(std, v); diff != "" {
			t.Fatalf("DecodeJSON(%q) differs from encoding/json (-std +got):\n%s", b, diff)
		}
		if m, ok := v.(map[string]any); ok {
			out, err := RemoveJSONMembers(b, "nonce")
			if err != nil {
				t.Fatalf("RemoveJSONMembers(%q) error = %v", b, err)
			}
			w, err := DecodeJSON(out, 8)
			if err != nil {
				t.Fatalf("RemoveJSONMembers(%q) = %q, not strict JSON: %v", b, out, err)
			}
			delete(m, "nonce")
			if diff := cmp.Diff(m, w); diff != "" {
				t.Fatalf("RemoveJSONMembers(%q) mismatch (-want +got):\n%s", b, diff)
			}
		}
	})
}
