package upstream

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// reqCase builds a fresh request each time it is asked (a body is read
// once).
type reqCase struct {
	name   string
	method string
	url    string
	host   string
	header http.Header
	body   string
	setup  func(*http.Request)
}

func (c reqCase) build(t *testing.T) *http.Request {
	t.Helper()
	u, err := url.Parse(c.url)
	if err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: c.method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: c.host}
	for k, vs := range c.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if c.body != "" {
		req.Body = io.NopCloser(strings.NewReader(c.body))
		req.ContentLength = int64(len(c.body))
	}
	if c.setup != nil {
		c.setup(req)
	}
	return req
}

// TestAppendRequestMatchesWrite: for every request appendRequest takes, its
// bytes are req.Write's; a request it does not take is left unread.
func TestAppendRequestMatchesWrite(t *testing.T) {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Mbx-Apikey": {"KEY123"}}
	tests := []struct {
		c     reqCase
		plain bool
	}{
		{reqCase{name: "order", method: "POST", url: "http://venue:8080/api/v3/order", host: "venue:8080", header: form,
			body: "symbol=BTCUSDT&side=BUY&timestamp=1&signature=ab"}, true},
		{reqCase{name: "get with query", method: "GET", url: "http://venue/api/v3/account?timestamp=1&signature=ab",
			header: http.Header{"X-Mbx-Apikey": {"K"}, "Accept": {"application/json"}}}, true},
		{reqCase{name: "delete no body", method: "DELETE", url: "http://venue/api/v3/order?symbol=X"}, true},
		{reqCase{name: "put no body", method: "PUT", url: "http://venue/api/v3/userDataStream"}, true},
		{reqCase{name: "patch", method: "PATCH", url: "http://venue/x", body: "{}"}, true},
		{reqCase{name: "empty path", method: "GET", url: "http://venue"}, true},
		{reqCase{name: "own user agent", method: "GET", url: "http://venue/a", header: http.Header{"User-Agent": {"ccxt/4"}}}, true},
		{reqCase{name: "blank user agent", method: "GET", url: "http://venue/a", header: http.Header{"User-Agent": {""}}}, true},
		{reqCase{name: "two values", method: "GET", url: "http://venue/a", header: http.Header{"Accept": {"a", "b"}, "A": {"x"}}}, true},
		{reqCase{name: "ipv6 host", method: "GET", url: "http://[::1]:9/a"}, true},
		{reqCase{name: "inner tab", method: "GET", url: "http://venue/a", header: http.Header{"X-A": {"a\tb"}}}, true},
		// Shapes left to req.Write.
		{reqCase{name: "escaped path", method: "GET", url: "http://venue/a%2Fb"}, false},
		{reqCase{name: "space in path", method: "GET", url: "http://venue/a%20b"}, false},
		{reqCase{name: "padded value", method: "GET", url: "http://venue/a", header: http.Header{"X-A": {" v "}}}, false},
		{reqCase{name: "newline in value", method: "GET", url: "http://venue/a", header: http.Header{"X-A": {"a\r\nB: c"}}}, false},
		{reqCase{name: "bad header name", method: "GET", url: "http://venue/a", header: http.Header{"X A": {"v"}}}, false},
		{reqCase{name: "close", method: "GET", url: "http://venue/a", setup: func(r *http.Request) { r.Close = true }}, false},
		{reqCase{name: "unknown length", method: "POST", url: "http://venue/a", body: "abc",
			setup: func(r *http.Request) { r.ContentLength = 0 }}, false},
		{reqCase{name: "other method", method: "OPTIONS", url: "http://venue/a"}, false},
		{reqCase{name: "force query", method: "GET", url: "http://venue/a?"}, false},
		{reqCase{name: "host with zone", method: "GET", url: "http://venue/a", host: "[fe80::1%25eth0]:80"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.c.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := tt.c.build(t).Write(&want); err != nil {
				t.Fatal(err)
			}
			req := tt.c.build(t)
			got, ok, err := appendRequest([]byte("prefix"), req)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.plain {
				t.Fatalf("appendRequest took it = %v, want %v", ok, tt.plain)
			}
			if !ok {
				if string(got) != "prefix" {
					t.Errorf("appendRequest wrote %q for a request it does not take", got)
				}
				if req.Body != nil {
					if b, _ := io.ReadAll(req.Body); string(b) != tt.c.body {
						t.Errorf("body consumed: %q left of %q", b, tt.c.body)
					}
				}
				return
			}
			if diff := cmp.Diff(want.String(), strings.TrimPrefix(string(got), "prefix")); diff != "" {
				t.Errorf("appendRequest differs from req.Write (-Write +ours):\n%s", diff)
			}
		})
	}
}

// TestAppendRequestBodyLength: a body shorter or longer than its
// ContentLength is an error, as it is for req.Write.
func TestAppendRequestBodyLength(t *testing.T) {
	for _, n := range []int64{2, 10} {
		req, _ := http.NewRequest("POST", "http://venue/a", strings.NewReader("abcde"))
		req.ContentLength = n
		if _, ok, err := appendRequest(nil, req); !ok || err == nil {
			t.Errorf("ContentLength %d, body of 5: ok %v err %v, want an error", n, ok, err)
		}
	}
}

// TestAppendRequestRandom compares with req.Write over random
// combinations of the parts the gateway varies.
func TestAppendRequestRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	paths := []string{"/api/v3/order", "/", "", "/sapi/v1/a.b/c_d~e-f", "/x y", "/a%zz"}
	queries := []string{"", "a=1", "symbol=BTCUSDT&signature=00ff", "a=%20b", "a=b c"}
	names := []string{"Content-Type", "Accept", "User-Agent", "X-Mbx-Apikey", "Content-Length", "Host", "Zeta", "alpha", "Trailer"}
	values := []string{"v", "", "application/json", "two words", " pad", "x\ty", "é"}
	bodies := []string{"", "q=1", "symbol=BTCUSDT&side=BUY&type=LIMIT"}
	taken := 0
	for i := 0; i < 2000; i++ {
		c := reqCase{method: methods[r.IntN(len(methods))], body: bodies[r.IntN(len(bodies))], header: http.Header{}}
		c.url = "http://venue:1" + paths[r.IntN(len(paths))]
		if q := queries[r.IntN(len(queries))]; q != "" {
			c.url += "?" + q
		}
		if _, err := url.Parse(c.url); err != nil {
			continue
		}
		for j := r.IntN(5); j > 0; j-- {
			k := names[r.IntN(len(names))]
			c.header[k] = append(c.header[k], values[r.IntN(len(values))])
		}
		var want bytes.Buffer
		if err := c.build(t).Write(&want); err != nil {
			continue
		}
		got, ok, err := appendRequest(nil, c.build(t))
		if err != nil {
			t.Fatalf("%s %s %v: %v", c.method, c.url, c.header, err)
		}
		if !ok {
			continue
		}
		taken++
		if string(got) != want.String() {
			t.Fatalf("%s %s %v %q:\nWrite: %q\nours:  %q", c.method, c.url, c.header, c.body, want.String(), got)
		}
	}
	if taken < 200 {
		t.Errorf("only %d of the random requests took the direct path", taken)
	}
}
