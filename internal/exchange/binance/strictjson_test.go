package binance

import "testing"

func TestCheckStrictJSON(t *testing.T) {
	tests := []struct {
		in   string
		want bool // valid
	}{
		{`[{"a":1,"b":"2"}]`, true},
		{`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, true},
		{`[]`, true},
		{`{"a":1,"a":2}`, false},
		{`[{"a":1},{"b":{"c":1,"c":2}}]`, false},
		{`{"a":1}{"a":1}`, false},
		{`{"a":1`, false},
		{`{"a":NaN}`, false},
		{"{\"a\":\"\xff\"}", false},
		{`[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := checkStrictJSON([]byte(tt.in)) == nil; got != tt.want {
			t.Errorf("checkStrictJSON(%q) valid = %v, want %v", tt.in, got, tt.want)
		}
	}
}
