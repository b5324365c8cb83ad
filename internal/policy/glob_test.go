package policy

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern string
		fold    bool
		s       string
		want    bool
	}{
		{"BTCUSDT", true, "BTCUSDT", true},
		{"BTCUSDT", true, "btcusdt", true},
		{"BTCUSDT", false, "btcusdt", false},
		{"BTCUSDT", true, "BTCUSDT2", false},
		{"*USDT", true, "ETHUSDT", true},
		{"*USDT", true, "USDT", true},
		{"*USDT", true, "ETHUSDC", false},
		{"BTC-*", true, "BTC-USDT", true},
		{"BTC-*", true, "BTCUSDT", false},
		{"B?C*", true, "BTCUSDT", true},
		{"B?C", true, "BC", false},
		{"?", true, "é", true},
		{"*a*b*c", false, "xxaxxbxxc", true},
		{"*a*b*c", false, "xxaxxcxxb", false},
		{"POST /api/v3/*", false, "POST /api/v3/order", true},
		{"POST /api/v3/*", false, "POST /api/v3/order/test", true},
		{"POST /api/v3/*", false, "DELETE /api/v3/order", false},
		{"POST /api/v3/*", false, "post /api/v3/order", false},
		// ASCII folding only: the Kelvin sign is not a K.
		{"KAVAUSDT", true, "\u212aAVAUSDT", false},
		{"kavausdt", true, "KAVAUSDT", true},
		// Full-width letters are not ASCII letters.
		{"BTC*", true, "ＢＴＣUSDT", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"/"+tt.s, func(t *testing.T) {
			g, err := compileGlob(tt.pattern, tt.fold)
			if err != nil {
				t.Fatalf("compileGlob(%q) error: %v", tt.pattern, err)
			}
			if got := g.match(tt.s); got != tt.want {
				t.Errorf("glob(%q, fold=%v).match(%q) = %v, want %v", tt.pattern, tt.fold, tt.s, got, tt.want)
			}
		})
	}
}

func TestCompileGlobErrors(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{"", "empty pattern"},
		{"BTC\x00", "control character"},
		{"BTC**", `contains "**"`},
		{"\xff", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := compileGlob(tt.pattern, true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("compileGlob(%q) = %v, want error containing %q", tt.pattern, err, tt.want)
			}
		})
	}
}

// globRegexp is an independent reference implementation of the matcher.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func FuzzGlob(f *testing.F) {
	f.Add("*USDT", "BTCUSDT")
	f.Add("B?C*", "BTCUSDT")
	f.Add("*a*b*c", "xxaxxbxxc")
	f.Add("POST /api/*/order", "POST /api/v3/order")
	f.Add("?é*", "xé")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return
		}
		for _, fold := range []bool{false, true} {
			g, err := compileGlob(pattern, fold)
			if err != nil {
				return
			}
			got := g.match(s)
			// The reference works on valid UTF-8 only ('.' and '?' count
			// runes); fold by lower-casing ASCII on both sides.
			if !utf8.ValidString(s) {
				continue
			}
			p, subj := pattern, s
			if fold {
				p, subj = asciiLower(p), asciiLower(subj)
			}
			if want := globRegexp(p).MatchString(subj); got != want {
				t.Fatalf("glob(%q, fold=%v).match(%q) = %v, want %v", pattern, fold, s, got, want)
			}
		}
	})
}
