package exchange

import (
	"net/http"
	"strings"
	"testing"
)

func TestSingleHeader(t *testing.T) {
	h := http.Header{"A": {"1"}, "B": {"1", "2"}}
	tests := []struct {
		name    string
		want    string
		present bool
		wantErr bool
	}{{"A", "1", true, false}, {"B", "", true, true}, {"C", "", false, false}}
	for _, tt := range tests {
		got, present, err := SingleHeader(h, tt.name)
		if got != tt.want || present != tt.present || (err != nil) != tt.wantErr {
			t.Errorf("SingleHeader(%s) = %q %v %v, want %q %v err=%v", tt.name, got, present, err, tt.want, tt.present, tt.wantErr)
		}
	}
}

func TestValidKeyID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{{"abc-123_XY", true}, {"", false}, {"a b", false}, {"a\x7f", false}, {"ключ", false}, {strings.Repeat("k", 129), false}, {strings.Repeat("k", 128), true}}
	for _, tt := range tests {
		if got := ValidKeyID(tt.in); got != tt.want {
			t.Errorf("ValidKeyID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
