package upstream

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzReadResponse: for any bytes a venue could send, readResponse reads
// the same answer as http.ReadResponse (status, header, framing, body, and
// what is left for the next answer), or fails where it fails.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n folded: x\r\n\r\nx",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add(s, uint8(1))
	}
	methods := []string{"GET", "POST", "HEAD", "DELETE"}
	f.Fuzz(func(t *testing.T, raw string, m uint8) {
		method := methods[int(m)%len(methods)]
		want := readWith(http.ReadResponse, raw, method)
		got := readWith(readResponse, raw, method)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s %q: readResponse differs from http.ReadResponse (-std +ours):\n%s", method, raw, diff)
		}
	})
}

// FuzzAppendRequest: whatever request appendRequest writes itself, its bytes
// are req.Write's.
func FuzzAppendRequest(f *testing.F) {
	f.Add("POST", "/api/v3/order", "a=1", "X-Mbx-Apikey", "KEY", "symbol=BTCUSDT&signature=ab")
	f.Add("GET", "/api/v3/account", "timestamp=1&signature=ab", "Accept", "application/json", "")
	f.Add("DELETE", "/a%zz", "a=b c", "Content-Length", "5", "")
	f.Add("PUT", "/x y", "", "Host", "evil", "q=1")
	f.Add("POST", "/", "", "Trailer", "X", "é")
	f.Fuzz(func(t *testing.T, method, path, query, name, value, body string) {
		u, err := url.Parse("http://venue:1" + path)
		if err != nil {
			return
		}
		u.RawQuery = query
		build := func() *http.Request {
			req := &http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{}, Host: "venue:1"}
			if name != "" {
				req.Header[name] = []string{value}
			}
			if body != "" {
				req.Body = io.NopCloser(strings.NewReader(body))
				req.ContentLength = int64(len(body))
			}
			return req
		}
		var want bytes.Buffer
		wantErr := build().Write(&want)
		got, ok, err := appendRequest(nil, build())
		if err != nil || !ok {
			return // left to req.Write, or refused
		}
		if wantErr != nil {
			t.Fatalf("appendRequest wrote %q where req.Write fails: %v", got, wantErr)
		}
		if string(got) != want.String() {
			t.Fatalf("%s %q %q %q=%q %q:\nWrite: %q\nours:  %q", method, path, query, name, value, body, want.String(), got)
		}
	})
}
