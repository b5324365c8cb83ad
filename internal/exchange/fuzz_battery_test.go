package exchange

import (
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Fuzz targets of the security battery (spec/security.md §4 Z1–Z3) for the
// parsing every venue shares. Seeds are the hostile inputs of the A-series.

// FuzzParseQuery (Z2): a parsed query never holds a duplicate name, and
// encoding what was parsed parses back to the same parameters.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"symbol=BTCUSDT&side=BUY&quantity=1", "quantity=1&quantity=1000", "quantity=1&QUANTITY=1000",
		"a=%zz", "a=%ff", "=x", "a", "a=1&&b=2", "a=%0d%0a", "a=b%00", strings.Repeat("a=1&", 300),
		"signature=x&timestamp=1&recvWindow=5000", "q=%E2%82%AC", "a=+1", "a=1e9", "a=%25252e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ps, err := ParseQuery(raw)
		// AppendQuery onto parameters already held (a name raw also has,
		// into an array with and without room) adds exactly what
		// ParseQuery finds, or fails alike and adds nothing.
		var arr [4]Param
		for _, prefix := range []Params{nil, {{"quantity", "1"}}, append(arr[:0], Param{"x", "y"})} {
			held := append(Params(nil), prefix...)
			got, aerr := AppendQuery(prefix, raw)
			if (aerr != nil) != (err != nil) {
				t.Fatalf("AppendQuery(%v, %q) err = %v, ParseQuery err = %v", held, raw, aerr, err)
			}
			want := append(append(Params(nil), held...), ps...)
			if aerr != nil {
				want = held
			}
			if len(got) != len(want) {
				t.Fatalf("AppendQuery(%v, %q) = %v, want %v", held, raw, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("AppendQuery(%v, %q) = %v, want %v", held, raw, got, want)
				}
			}
		}
		if err != nil {
			return
		}
		seen := map[string]bool{}
		vals := url.Values{}
		var enc []string
		for _, p := range ps {
			if seen[p.Name] {
				t.Fatalf("ParseQuery(%q) kept duplicate %q", raw, p.Name)
			}
			seen[p.Name] = true
			vals.Set(p.Name, p.Value)
			enc = append(enc, url.QueryEscape(p.Name)+"="+url.QueryEscape(p.Value))
		}
		again, err := ParseQuery(strings.Join(enc, "&"))
		if err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", raw, err)
		}
		if len(again) != len(ps) {
			t.Fatalf("ParseQuery(%q): %d params, re-encoded %d", raw, len(ps), len(again))
		}
		for i := range ps {
			if ps[i] != again[i] {
				t.Fatalf("ParseQuery(%q) param %d = %v, re-encoded %v", raw, i, ps[i], again[i])
			}
		}
		_ = RemoveParams(raw, "signature", "timestamp")
	})
}

// FuzzSplitPath (Z1): an accepted path is canonical — re-joining its
// segments gives it back — and holds no dot segment, empty segment, percent
// sign, backslash or control byte.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{
		"/api/v3/order", "/sapi/v1/capital/withdraw/apply/", "/SAPI/V1", "/api/%2e%2e/x", "/api/./x", "/api//x",
		"/api;x", `/api\v3`, "/api@evil.example/v3", "/a/%252e", "/a\x00b", "/a/\xc0\xaf", "", "/", "/..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := SplitPath(p)
		checkErr := CheckPath(p, 512)
		if err != nil {
			return
		}
		if checkErr != nil {
			t.Fatalf("SplitPath accepts %q but CheckPath refuses it: %v", p, checkErr)
		}
		if "/"+strings.Join(segs, "/") != p {
			t.Fatalf("SplitPath(%q) = %q: not canonical", p, segs)
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." {
				t.Fatalf("SplitPath(%q) kept segment %q", p, s)
			}
		}
		if strings.ContainsAny(p, "%\\;@\x00\r\n") {
			t.Fatalf("SplitPath accepted %q", p)
		}
	})
}

// FuzzPlainDecimal (Z3): an accepted decimal is exactly what math/big reads
// it as, and never an exponent, sign, hex, NaN or infinity.
func FuzzPlainDecimal(f *testing.F) {
	for _, s := range []string{"0.01", "1e9", "-1", "0", "NaN", "Inf", "0x10", "1_000", " 0.01", "０.０１",
		strings.Repeat("1", 40), "1.", ".1", "1.2.3", "49000.00000001"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, signed bool) {
		if !PlainDecimal(s, signed) {
			return
		}
		if strings.ContainsAny(s, "eExXpP_+ \t") || strings.Contains(strings.ToLower(s), "nan") || strings.Contains(strings.ToLower(s), "inf") {
			t.Fatalf("PlainDecimal accepted %q", s)
		}
		if !signed && strings.HasPrefix(s, "-") {
			t.Fatalf("PlainDecimal(%q, unsigned) accepted a sign", s)
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("PlainDecimal accepted %q that math/big cannot read", s)
		}
		want, _ := r.Float64()
		if got := ParseFloat(s); got != want {
			t.Fatalf("ParseFloat(%q) = %v, math/big says %v", s, got, want)
		}
	})
}

// FuzzHeaders (Z10): header and key-id checks never panic, and a valid key
// id carries no byte that could split a header or a log line.
func FuzzHeaders(f *testing.F) {
	for _, s := range []string{"kwb_abc123", "EXKEY0123", "a\r\nX-Injected: 1", "", "a b", "\x00", strings.Repeat("k", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidKeyID(s) && strings.ContainsAny(s, "\r\n\x00 \t") {
			t.Fatalf("ValidKeyID accepted %q", s)
		}
		h := http.Header{}
		h.Add("X-Mbx-Apikey", s)
		if v, ok, err := SingleHeader(h, "X-Mbx-Apikey"); err == nil && ok && v != s {
			t.Fatalf("SingleHeader = %q, want %q", v, s)
		}
		h.Add("X-Mbx-Apikey", s)
		if _, _, err := SingleHeader(h, "X-Mbx-Apikey"); err == nil {
			t.Fatal("SingleHeader accepted a repeated header")
		}
		_ = SafeName(s)
	})
}
