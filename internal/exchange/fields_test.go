package exchange

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFieldsField(t *testing.T) {
	body := map[string]any{"s": "1.5", "n": json.Number("2"), "b": true, "z": nil, "o": map[string]any{}, "same": "3", "diff": "4"}
	f := Fields{Body: body, Query: Params{{"q", "x"}, {"same", "3"}, {"diff", "5"}, {"z", "q"}}}
	tests := []struct {
		name    string
		want    string
		wantErr bool
	}{
		{"s", "1.5", false},
		{"n", "2", false},
		{"b", "true", false},
		{"q", "x", false},
		{"z", "q", false},
		{"same", "3", false},
		{"diff", "", true},
		{"o", "", true},
		{"absent", "", false},
	}
	for _, tt := range tests {
		got, err := f.Field(tt.name)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Field(%q) = %q, %v, want %q, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFieldsDecimal(t *testing.T) {
	f := Fields{Body: map[string]any{"a": "1.25", "e": "1e3", "neg": "-1", "n": json.Number("7")}}
	tests := []struct {
		name    string
		want    float64
		wantErr bool
	}{
		{"a", 1.25, false},
		{"n", 7, false},
		{"absent", 0, false},
		{"e", 0, true},
		{"neg", 0, true},
	}
	for _, tt := range tests {
		got, err := f.Decimal(tt.name)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Decimal(%q) = %v, %v, want %v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPlainDecimal(t *testing.T) {
	tests := []struct {
		in     string
		signed bool
		want   bool
	}{
		{"0", false, true},
		{"12.5", false, true},
		{"-12.5", true, true},
		{"-12.5", false, false},
		{"", false, false},
		{"-", true, false},
		{".5", false, false},
		{"5.", false, false},
		{"1.2.3", false, false},
		{"1e5", false, false},
		{"0x10", false, false},
		{"1_000", false, false},
		{" 1", false, false},
		{"NaN", false, false},
		{"123456789012345678901234567890123", false, false},
	}
	for _, tt := range tests {
		if got := PlainDecimal(tt.in, tt.signed); got != tt.want {
			t.Errorf("PlainDecimal(%q, %v) = %v, want %v", tt.in, tt.signed, got, tt.want)
		}
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"/api/v4/spot/orders", []string{"api", "v4", "spot", "orders"}, false},
		{"/a", []string{"a"}, false},
		{"", nil, true},
		{"api/v4", nil, true},
		{"/api//v4", nil, true},
		{"/api/v4/", nil, true},
		{"/api/./v4", nil, true},
		{"/api/../v4", nil, true},
		{"/api/%2e", nil, true},
		{`/api\v4`, nil, true},
		{"/api;x/v4", nil, true},
		{"/a@b", nil, true},
		{"/caf\xc3\xa9", nil, true},
		{"/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", nil, true},
	}
	for _, tt := range tests {
		got, err := SplitPath(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("SplitPath(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("SplitPath(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestUnescapedQuery(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"a=1&b=2", "a=1&b=2", false},
		{"a=x%2Cy&b=c+d", "a=x,y&b=c d", false},
		{"a=%zz", "", true},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := UnescapedQuery(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("UnescapedQuery(%q) = %q, %v, want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		in      string
		maxLen  int
		wantErr bool
	}{
		{"/0/private/AddOrder", 64, false},
		{"/api/v3/brokerage/orders/historical/batch", 64, false},
		{"/a@b", 64, false},
		{"", 64, true},
		{"a/b", 64, true},
		{"/a/", 64, true},
		{"/a//b", 64, true},
		{"/a/./b", 64, true},
		{"/a/../b", 64, true},
		{"/a%2fb", 64, true},
		{`/a\b`, 64, true},
		{"/a;b", 64, true},
		{"/a b", 64, true},
		{"/caf\xc3\xa9", 64, true},
		{"/abcdef", 4, true},
	}
	for _, tt := range tests {
		if err := CheckPath(tt.in, tt.maxLen); (err != nil) != tt.wantErr {
			t.Errorf("CheckPath(%q, %d) = %v, want error %v", tt.in, tt.maxLen, err, tt.wantErr)
		}
	}
}
