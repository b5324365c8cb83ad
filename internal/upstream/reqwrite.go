package upstream

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// appendRequest appends to dst the bytes req.Write would produce for req,
// when req is of the plain shape the gateway sends: a common method, a path
// of unreserved characters, a query and header values without control
// characters, header names that are tokens, no Host header override beyond
// a plain host, and no body or a body of known length, not closed or
// chunked. For any other request ok is false and the caller uses req.Write;
// nothing of req has been consumed then. It reads and closes req's body, as
// req.Write does.
func appendRequest(dst []byte, req *http.Request) (out []byte, ok bool, err error) {
	if !plainRequest(req) {
		return dst, false, nil
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	if req.URL.Path == "" {
		dst = append(dst, '/')
	} else {
		dst = append(dst, req.URL.Path...)
	}
	if req.URL.RawQuery != "" {
		dst = append(dst, '?')
		dst = append(dst, req.URL.RawQuery...)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	ua := "Go-http-client/1.1"
	if vs, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(vs) > 0 {
			ua = vs[0]
		}
	}
	if ua != "" {
		dst = append(dst, "User-Agent: "...)
		dst = append(dst, ua...)
		dst = append(dst, "\r\n"...)
	}
	n := int64(0)
	if req.Body != nil && req.Body != http.NoBody {
		n = req.ContentLength
	}
	if n > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, n, 10)
		dst = append(dst, "\r\n"...)
	}
	var keysBuf [16]string
	keys := keysBuf[:0]
	for k := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.Header[k] {
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, v...)
			dst = append(dst, "\r\n"...)
		}
	}
	dst = append(dst, "\r\n"...)
	if n > 0 {
		defer req.Body.Close()
		start := len(dst)
		dst = slices.Grow(dst, int(n))[:start+int(n)]
		got, rerr := io.ReadFull(req.Body, dst[start:])
		if rerr == nil {
			// Whatever follows the declared length is read and dropped,
			// and counted, as req.Write does.
			var extra int64
			extra, rerr = io.Copy(io.Discard, req.Body)
			got += int(extra)
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF && rerr != io.EOF {
			return dst[:start], true, rerr
		}
		if int64(got) != n {
			return dst[:start], true, fmt.Errorf("http: ContentLength=%d with Body length %d", n, got)
		}
	} else if req.Body != nil {
		req.Body.Close()
	}
	return dst, true, nil
}

// plainRequest says whether appendRequest writes req exactly as req.Write
// would: every field it would transform or check is already in the form
// that passes unchanged.
func plainRequest(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
	default:
		return false
	}
	u := req.URL
	if u == nil || u.Opaque != "" || u.RawPath != "" || u.ForceQuery || req.Close ||
		len(req.TransferEncoding) > 0 || req.Trailer != nil {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0 {
		return false
	}
	if req.Body == nil && req.ContentLength != 0 {
		return false
	}
	host := req.Host
	if host == "" {
		host = u.Host
	}
	if host == "" || !plainHost(host) || !plainPath(u.Path) || !plainText(u.RawQuery, false) {
		return false
	}
	if len(req.Header) > 16 {
		return false
	}
	for k, vs := range req.Header {
		if !token(k) {
			return false
		}
		for _, v := range vs {
			if !plainText(v, true) {
				return false
			}
		}
	}
	return true
}

// plainHost: letters, digits, '.', '-', ':', '[' and ']' (no zone, no
// non-ASCII name for Punycode to change).
func plainHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(alnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// plainPath: a path that URL.EscapedPath returns unchanged and that is
// not "*".
func plainPath(s string) bool {
	if s != "" && s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(alnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// plainText: no control characters and no spaces (a query), or no control
// characters and no surrounding blanks (a header value, which req.Write
// trims).
func plainText(s string, header bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
		if !header && (c == ' ' || c == '\t') {
			return false
		}
	}
	if header && len(s) > 0 {
		first, last := s[0], s[len(s)-1]
		if first == ' ' || first == '\t' || last == ' ' || last == '\t' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// token says whether s is an HTTP token (RFC 9110 §5.6.2), which header
// names must be.
func token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if alnum(c) {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			continue
		}
		return false
	}
	return true
}
