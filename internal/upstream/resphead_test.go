package upstream

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// answer is what a reader made of one response, and what it left unread.
type answer struct {
	Status        string
	StatusCode    int
	Proto         string
	Major, Minor  int
	Header        http.Header
	ContentLength int64
	Close         bool
	TE            []string
	Body          string
	BodyErr       string
	Rest          string
	Err           string
}

func readWith(read func(*bufio.Reader, *http.Request) (*http.Response, error), raw, method string) answer {
	br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
	req, _ := http.NewRequest(method, "http://venue/x", nil)
	resp, err := read(br, req)
	if err != nil {
		return answer{Err: "error"}
	}
	a := answer{Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto, Major: resp.ProtoMajor,
		Minor: resp.ProtoMinor, Header: resp.Header, ContentLength: resp.ContentLength, Close: resp.Close,
		TE: resp.TransferEncoding}
	b, err := io.ReadAll(resp.Body)
	a.Body = string(b)
	if err != nil {
		a.BodyErr = "error"
	}
	rest, _ := io.ReadAll(br)
	a.Rest = string(rest)
	return a
}

// parsedDirectly says whether readResponse parses raw itself rather than
// leaving it to net/http.
func parsedDirectly(raw string) bool {
	br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
	head := peekHead(br)
	if head == nil {
		return false
	}
	_, ok := parseHead(head, br, nil, new(plainAnswer))
	return ok
}

// TestReadResponseMatchesStd: whatever readResponse parses itself, and
// whatever it leaves to net/http, comes out as http.ReadResponse reads it,
// including what stays in the buffer for the next answer.
func TestReadResponseMatchesStd(t *testing.T) {
	const next = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name, raw string
		plain     bool
	}{
		{"order ack", "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: 13\r\nX-Mbx-Used-Weight-1m: 5\r\nDate: Wed, 25 Nov 2026 12:00:00 GMT\r\n\r\n{\"orderId\":1}" + next, true},
		{"lower-case names, repeats, blanks", "HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\nx-a:  1 \r\nX-A:\t2\r\nset-cookie: a=b\r\nX-Empty:\r\n\r\n{}" + next, true},
		{"no reason", "HTTP/1.1 503\r\nContent-Length: 1\r\n\r\nx", true},
		{"empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + next, true},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + next, false},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false},
		{"no length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n" + next, false},
		{"304", "HTTP/1.1 304 Not Modified\r\n\r\n" + next, false},
		{"100 continue", "HTTP/1.1 100 Continue\r\n\r\n" + next, false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", false},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", false},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok", false},
		{"space in name", "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok", false},
		{"control byte in value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok", false},
		{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nok", false},
		{"bad status", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"two spaces", "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false},
		{"header cut short", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", false},
		{"header larger than the buffer", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\nContent-Length: 2\r\n\r\nok", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := readWith(http.ReadResponse, tt.raw, "GET")
			got := readWith(readResponse, tt.raw, "GET")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("readResponse differs from http.ReadResponse (-std +ours):\n%s", diff)
			}
			if ok := parsedDirectly(tt.raw); ok != tt.plain {
				t.Errorf("parsed directly = %v, want %v", ok, tt.plain)
			}
		})
	}
	// A HEAD answer's length describes no body: left to net/http.
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + next
	if diff := cmp.Diff(readWith(http.ReadResponse, raw, "HEAD"), readWith(readResponse, raw, "HEAD")); diff != "" {
		t.Errorf("HEAD: (-std +ours):\n%s", diff)
	}
}

// TestReadResponseRandom compares with http.ReadResponse over random
// header lines.
func TestReadResponseRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	statuses := []string{"200 OK", "201 Created", "400 Bad Request", "418", "429 Too Many Requests", "500 Internal Server Error", "204 No Content", "302 Found"}
	names := []string{"Content-Type", "content-type", "X-Mbx-Used-Weight", "x-mbx-used-weight", "Date", "Retry-After", "Set-Cookie", "X-Éa", "Connection", "Pragma", "Cache-Control", "Content-Length"}
	values := []string{"1", "", " padded ", "a, b", "keep-alive", "close", "no-cache", "5", "x\ty", "7"}
	parsed := 0
	for i := 0; i < 3000; i++ {
		var sb strings.Builder
		sb.WriteString("HTTP/1.1 " + statuses[r.IntN(len(statuses))] + "\r\n")
		for j := r.IntN(6); j > 0; j-- {
			sb.WriteString(names[r.IntN(len(names))] + ":" + values[r.IntN(len(values))] + "\r\n")
		}
		body := strings.Repeat("b", r.IntN(8))
		if r.IntN(4) > 0 {
			sb.WriteString("Content-Length: " + string(rune('0'+len(body))) + "\r\n")
		}
		sb.WriteString("\r\n" + body + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		raw := sb.String()
		want := readWith(http.ReadResponse, raw, "POST")
		got := readWith(readResponse, raw, "POST")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%q: (-std +ours):\n%s", raw, diff)
		}
		if parsedDirectly(raw) {
			parsed++
		}
	}
	if parsed < 300 {
		t.Errorf("only %d of the random answers were parsed directly", parsed)
	}
}
