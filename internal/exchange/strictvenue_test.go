package exchange

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanonicalPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "/api/v5/trade/order", want: "/api/v5/trade/order"},
		{in: "/API/V5/Trade/Order", want: "/api/v5/trade/order"},
		{in: "/api/v5/trade/order%2F", bad: true},
		{in: "/api/v5/../asset/withdrawal", bad: true},
		{in: "/api//v5", bad: true},
		{in: "/api/v5/", bad: true},
		{in: "/api/v5/trade order", bad: true},
		{in: "/api/v5/tr\u00e4de", bad: true},
	} {
		got, err := CanonicalPath(tc.in, 64)
		if tc.bad {
			var e *Error
			if !errors.As(err, &e) || e.Kind != ErrBadRequest {
				t.Errorf("CanonicalPath(%q) = %q, %v; want an ErrBadRequest", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := CanonicalPath("/"+string(make([]byte, 70)), 64); err == nil {
		t.Error("CanonicalPath accepted a path over the limit")
	}
}

func TestStrictFieldReaders(t *testing.T) {
	v, err := ParseJSONBody([]byte(`{"sz":"0.5","px":"30000","tag":null,"n":{"a":1}}`), 4)
	if err != nil {
		t.Fatal(err)
	}
	obj := ObjFields(v.(map[string]any))
	got, err := GetStrings(obj, "sz", "px", "tag", "absent")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0.5", "30000", "", ""}, got); diff != "" {
		t.Errorf("GetStrings (-want +got):\n%s", diff)
	}
	if _, err := GetStrings(obj, "sz", "n"); err == nil {
		t.Error("GetStrings read an object member as text")
	}
	if n, err := Num(obj, "sz"); err != nil || n != 0.5 {
		t.Errorf("Num(sz) = %v, %v; want 0.5", n, err)
	}
	q := QueryFields(Params{{Name: "qty", Value: "1e3"}})
	if _, err := Num(q, "qty"); err == nil {
		t.Error("Num read 1e3 as a decimal; exponents must be refused")
	}
	for _, s := range []string{"-1", "0x10", "1_000", " 1", "١"} {
		if _, err := Decimal("qty", s); err == nil {
			t.Errorf("Decimal(%q) accepted", s)
		}
	}
	for _, body := range []string{`{"a":1,"A":2}`, `{"a":1} {}`, `[[[[[[1]]]]]]`, "{\"a\":\"\xff\"}"} {
		if _, err := ParseJSONBody([]byte(body), 4); err == nil {
			t.Errorf("ParseJSONBody(%q) accepted", body)
		}
	}
}
