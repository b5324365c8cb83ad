package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
)

// readResponse reads the answer's header from br as http.ReadResponse does.
// An answer of the plain shape venues send — HTTP/1.1, a final status other
// than 204 and 304, one Content-Length, no Transfer-Encoding, Connection,
// Trailer or Pragma header, well-formed header lines that fit in br's buffer
// — is parsed here with a few allocations: all its strings share one copy of
// the header block. Anything else is left to http.ReadResponse, which then
// reads it from the start: nothing is consumed until the header is known to
// be plain.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	return readResponseInto(br, req, new(plainAnswer))
}

// plainAnswer holds what one answer of the plain shape needs, allocated
// together: the response, its body's reader and the body the client hands
// out (send).
type plainAnswer struct {
	resp http.Response
	lb   lengthBody
	body body
}

// readResponseInto is readResponse with a plain answer parsed into a.
func readResponseInto(br *bufio.Reader, req *http.Request, a *plainAnswer) (*http.Response, error) {
	if req.Method == http.MethodHead {
		return http.ReadResponse(br, req)
	}
	head := peekHead(br)
	if head == nil {
		return http.ReadResponse(br, req)
	}
	resp, ok := parseHead(head, br, req, a)
	if !ok {
		return http.ReadResponse(br, req)
	}
	if _, err := br.Discard(len(head)); err != nil {
		return nil, err
	}
	return resp, nil
}

// peekHead returns the header block (status line to the blank line
// included) from br's buffer, reading more as needed; nil when it does not
// fit in the buffer, or the read fails (http.ReadResponse then meets the
// same error).
func peekHead(br *bufio.Reader) []byte {
	for {
		// Everything buffered, without blocking.
		b, _ := br.Peek(br.Buffered())
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			return b[:i+4]
		}
		if len(b) >= br.Size() {
			return nil
		}
		// Wait for at least one more byte of the header.
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil
		}
	}
}

// parseHead parses a plain header block; ok is false for anything that is
// not plain (http.ReadResponse decides then).
func parseHead(head []byte, br *bufio.Reader, req *http.Request, a *plainAnswer) (*http.Response, bool) {
	// Every line ends in CRLF, and neither byte appears alone: net/http
	// also ends a line at a bare LF, so a block with one would be framed
	// differently here and there.
	for i, c := range head {
		if c == '\n' && (i == 0 || head[i-1] != '\r') || c == '\r' && (i+1 == len(head) || head[i+1] != '\n') {
			return nil, false
		}
	}
	block := string(head[:len(head)-2]) // one copy for every string below
	line, rest, _ := cut(block)
	if len(line) < 12 || line[:9] != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return nil, false
	}
	code := line[9:12]
	status, err := strconv.Atoi(code)
	if err != nil || code[0] < '2' || code[0] > '5' || status == http.StatusNoContent || status == http.StatusNotModified {
		return nil, false
	}
	if !validValue(line[9:]) {
		return nil, false
	}
	resp := &a.resp
	*resp = http.Response{Status: line[9:], StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: req}
	// Count the lines first, so the map and the values are sized once.
	lines := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\n' {
			lines++
		}
	}
	h := make(http.Header, lines)
	values := make([]string, 0, lines)
	length := int64(-1)
	for rest != "" {
		line, rest, _ = cut(rest)
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			return nil, false // obs-fold or a stray blank line
		}
		colon := -1
		for i := 0; i < len(line); i++ {
			if line[i] == ':' {
				colon = i
				break
			}
		}
		if colon <= 0 {
			return nil, false
		}
		key, value := line[:colon], trimBlanks(line[colon+1:])
		if !token(key) || !validValue(value) {
			return nil, false
		}
		key = textproto.CanonicalMIMEHeaderKey(key)
		switch key {
		case "Content-Length":
			if length >= 0 || value == "" || len(value) > 18 {
				return nil, false
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || value[0] == '+' {
				return nil, false
			}
			length = n
		case "Transfer-Encoding", "Connection", "Trailer", "Pragma":
			return nil, false
		}
		values = append(values, value)
		vs := values[len(values)-1 : len(values) : len(values)]
		if old, ok := h[key]; ok {
			vs = append(old, value)
		}
		h[key] = vs
	}
	if length < 0 {
		return nil, false
	}
	resp.Header = h
	resp.ContentLength = length
	if length == 0 {
		resp.Body = http.NoBody
	} else {
		a.lb = lengthBody{br: br, n: length}
		resp.Body = &a.lb
	}
	return resp, true
}

// cut splits s at its first CRLF.
func cut(s string) (line, rest string, ok bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\r' && s[i+1] == '\n' {
			return s[:i], s[i+2:], true
		}
	}
	return s, "", false
}

func trimBlanks(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validValue: no control bytes but tab (textproto refuses them too).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// lengthBody reads a body of n bytes from br.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n <= 0 {
		return n, io.EOF
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
