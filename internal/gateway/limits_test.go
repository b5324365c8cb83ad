package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestConfiguredLimits: MaxURI and MaxBody refuse longer request targets
// (414) and bodies (413) in the venue's shape, with nothing forwarded;
// requests at the limits pass.
func TestConfiguredLimits(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxURI = 120; o.MaxBody = 40 })
	const order = "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100"
	tests := []struct {
		name   string
		target string
		body   string
		status int
	}{
		{"target at the limit", order + "&pad=" + strings.Repeat("a", 120-len(order)-5), "", http.StatusOK},
		{"target over the limit", order + "&pad=" + strings.Repeat("a", 121-len(order)-5), "", http.StatusRequestURITooLong},
		{"body at the limit", order, strings.Repeat("b", 40), http.StatusOK},
		{"body over the limit", order, strings.Repeat("b", 41), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.up.count()
			w := h.do(signed("POST", tt.target, tt.body, clientSecret, time.Now()))
			if w.Code != tt.status {
				t.Fatalf("status = %d %s, want %d", w.Code, w.Body, tt.status)
			}
			forwarded := h.up.count() - before
			if want := map[bool]int{true: 1, false: 0}[tt.status == http.StatusOK]; forwarded != want {
				t.Errorf("forwarded %d, want %d", forwarded, want)
			}
			if tt.status != http.StatusOK && !strings.Contains(w.Body.String(), `"msg"`) {
				t.Errorf("body %s is not in the venue's error shape", w.Body)
			}
		})
	}
}

// TestReadBodyUnsizedOverLimit: a body with no declared length is still cut
// at the limit while it is read.
func TestReadBodyUnsizedOverLimit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		body   string
		status int
	}{
		{"at the limit", strings.Repeat("b", 40), 0},
		{"over the limit", strings.Repeat("b", 41), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/tv/order", io.NopCloser(strings.NewReader(tt.body)))
			r.ContentLength = -1
			b, e, status := readBody(httptest.NewRecorder(), r, 40)
			if status != tt.status {
				t.Fatalf("status = %d (%v), want %d", status, e, tt.status)
			}
			if tt.status == 0 && string(b) != tt.body {
				t.Errorf("body = %q, want %q", b, tt.body)
			}
		})
	}
}

// TestReadAllMatchesIOReadAll: readAll, presized or not, returns what
// io.ReadAll returns, for readers that return data with EOF, one byte at
// a time, or fail part way.
func TestReadAllMatchesIOReadAll(t *testing.T) {
	long := strings.Repeat("0123456789", 300)
	readers := map[string]func(string) io.Reader{
		"plain":      func(s string) io.Reader { return strings.NewReader(s) },
		"one byte":   func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"data + EOF": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		"fails":      func(s string) io.Reader { return io.MultiReader(strings.NewReader(s), iotest.ErrReader(errBoom)) },
	}
	for name, mk := range readers {
		for _, s := range []string{"", "a", "symbol=BTCUSDT&side=BUY", long} {
			for _, size := range []int{-1, 0, 1, len(s) + 1, len(s) + 100} {
				want, wantErr := io.ReadAll(mk(s))
				var buf []byte
				if size >= 0 {
					buf = make([]byte, 0, size)
				}
				got, err := readAll(mk(s), buf)
				if string(got) != string(want) || err != wantErr {
					t.Errorf("%s, %d bytes, buffer %d: got %d bytes, %v; io.ReadAll %d bytes, %v", name, len(s), size, len(got), err, len(want), wantErr)
				}
			}
		}
	}
}

var errBoom = errors.New("boom")
