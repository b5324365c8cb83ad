package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// net/http reads request heads leniently, as RFC 9112 allows a server to:
// a bare LF ends a line and an obs-folded line continues the header before
// it. A proxy or load balancer in front of keywarden may frame the same
// bytes differently, which is how requests are smuggled. StrictListener
// checks every request head on the wire before net/http parses it and ends
// the connection with 400 when its framing is not plain:
//
//   - every line ends in CRLF: no bare LF, no bare CR;
//   - no obs-fold (a header line starting with a space or tab);
//   - Content-Length is digits (optional spaces around), and a repeated
//     one has the same value.
//
// It follows bodies by their Content-Length so that every head on a
// keep-alive connection is checked; after a Transfer-Encoding header (which
// the gateway refuses and closes) or a 101 Switching Protocols answer (a
// WebSocket) it checks nothing more on that connection.
//
// The cost is one pass over the head bytes, with no allocation per request.

// errFraming is what the checked connection's Read returns for a head that
// is not plain; net/http answers it with 400 and closes.
var errFraming = errors.New("request framing is not plain HTTP/1.1 (bare LF or CR, obs-fold, or a malformed Content-Length)")

// StrictListener returns ln whose connections check request heads (see
// above). For TLS, pass the TLS listener: handlers still see r.TLS.
func StrictListener(ln net.Listener) net.Listener { return strictListener{ln} }

type strictListener struct{ net.Listener }

func (l strictListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &strictConn{Conn: c}
	sc.p.startHead()
	return sc, nil
}

// strictConn is a connection whose reads are checked by p. net/http reads
// a connection from one goroutine at a time; Write may run concurrently,
// so what it tells the reader is atomic.
type strictConn struct {
	net.Conn
	p        headParser
	failed   bool        // a head was not plain: every read fails
	switched atomic.Bool // a 101 answer was written
	upgrade  atomic.Bool // a head asked for an upgrade
}

func (c *strictConn) Read(b []byte) (int, error) {
	if c.failed {
		// Sticky: bufio hands a partial line on without the error that
		// came with it, and reads again.
		return 0, errFraming
	}
	n, err := c.Conn.Read(b)
	if n == 0 || c.p.state == passThrough {
		return n, err
	}
	if c.switched.Load() {
		c.p.state = passThrough
		return n, err
	}
	ok, k := c.p.feed(b[:n])
	if c.p.sawUpgrade {
		c.upgrade.Store(true)
		c.p.sawUpgrade = false
	}
	if !ok {
		c.failed = true
		return k, errFraming
	}
	return n, err
}

func (c *strictConn) Write(b []byte) (int, error) {
	// Only a connection that asked for an upgrade can switch; the flag is
	// kept (a pipelined answer may be written after the next head was read).
	if c.upgrade.Load() && bytes.HasPrefix(b, []byte("HTTP/1.1 101 ")) {
		c.switched.Store(true)
	}
	return c.Conn.Write(b)
}

// tlsConn is what a TLS connection offers.
type tlsConn interface {
	ConnectionState() tls.ConnectionState
	HandshakeContext(ctx context.Context) error
}

// handshakeTimeout bounds the TLS handshake ConnectionState completes.
const handshakeTimeout = 10 * time.Second

// ConnectionState completes the TLS handshake of a TLS connection and
// returns its state, so that net/http sets r.TLS (and the client
// certificate) as for a bare *tls.Conn; it asks before its first read.
func (c *strictConn) ConnectionState() tls.ConnectionState {
	t, ok := c.Conn.(tlsConn)
	if !ok {
		return tls.ConnectionState{}
	}
	if !t.ConnectionState().HandshakeComplete {
		_ = c.Conn.SetDeadline(time.Now().Add(handshakeTimeout))
		err := t.HandshakeContext(context.Background())
		_ = c.Conn.SetDeadline(time.Time{})
		if err != nil {
			return tls.ConnectionState{}
		}
	}
	return t.ConnectionState()
}

// Parser states.
const (
	inHead = iota
	inBody
	passThrough
)

// headParser follows one connection's requests: heads byte by byte,
// bodies by length.
type headParser struct {
	state     int
	remaining int64 // body bytes still to come

	lineStart bool // at the start of a line
	first     bool // in the request line (or blank lines before it)
	cr        bool // the previous byte was CR

	name    [len("transfer-encoding")]byte // lower-cased header name so far
	nameLen int                            // -1: past the colon
	long    bool                           // the name is longer than any framing header's
	field   int                            // field being read: fieldOther, fieldCL, ...

	cl, clSeen    int64 // this head's Content-Length (clSeen: -1 none)
	digits        int   // digits of the current Content-Length value
	trailingSpace bool  // spaces after the digits
	te            bool
	upgrade       bool
	// sawUpgrade says a finished head asked for a protocol upgrade; it
	// outlives the head, until the connection reads it.
	sawUpgrade bool
}

const (
	fieldOther = iota
	fieldCL
	fieldTE
	fieldUpgrade
)

// feed checks b. It returns false and how many bytes were fine when a head
// is not plain.
func (p *headParser) feed(b []byte) (bool, int) {
	for i := 0; i < len(b); {
		switch p.state {
		case passThrough:
			return true, len(b)
		case inBody:
			n := int64(len(b) - i)
			if n > p.remaining {
				n = p.remaining
			}
			p.remaining -= n
			i += int(n)
			if p.remaining == 0 {
				p.startHead()
			}
		case inHead:
			if !p.cr && !p.lineStart && (p.first || p.nameLen < 0 && p.field != fieldCL) {
				// Inside the request line or a value that does not
				// frame: only the line end matters.
				j := bytes.IndexAny(b[i:], "\r\n")
				if j < 0 {
					return true, len(b)
				}
				i += j
			}
			if !p.headByte(b[i]) {
				return false, i
			}
			i++
		}
	}
	return true, len(b)
}

func (p *headParser) startHead() {
	*p = headParser{state: inHead, lineStart: true, first: true, clSeen: -1, sawUpgrade: p.sawUpgrade}
}

// headByte takes one byte of a head.
func (p *headParser) headByte(c byte) bool {
	if p.cr {
		if c != '\n' {
			return false // bare CR
		}
		p.cr = false
		return p.endLine()
	}
	switch c {
	case '\r':
		p.cr = true
		return true
	case '\n':
		return false // bare LF
	}
	if p.lineStart {
		p.lineStart = false
		if !p.first && (c == ' ' || c == '\t') {
			return false // obs-fold
		}
		p.nameLen, p.long, p.field, p.digits, p.trailingSpace = 0, false, fieldOther, 0, false
	}
	if p.first {
		return true
	}
	if p.nameLen >= 0 {
		if c == ':' {
			if !p.long {
				p.field = fieldOf(p.name[:p.nameLen])
			}
			p.nameLen = -1
			switch p.field {
			case fieldTE:
				p.te = true
			case fieldUpgrade:
				p.upgrade = true
			}
			return true
		}
		if p.nameLen < len(p.name) {
			p.name[p.nameLen] = lower(c)
			p.nameLen++
		} else {
			p.long = true
		}
		return true
	}
	if p.field == fieldCL {
		switch {
		case c == ' ' || c == '\t':
			if p.digits > 0 {
				p.trailingSpace = true
			}
		case '0' <= c && c <= '9' && !p.trailingSpace:
			if p.digits >= 15 {
				return false
			}
			if p.digits == 0 {
				p.cl = 0
			}
			p.cl = p.cl*10 + int64(c-'0')
			p.digits++
		default:
			return false // "+4", "4, 4", "0x4"
		}
	}
	return true
}

// endLine ends the current line at its CRLF.
func (p *headParser) endLine() bool {
	empty := p.lineStart
	p.lineStart = true
	if p.first {
		if !empty {
			p.first = false
		}
		return true
	}
	if p.field == fieldCL {
		if p.digits == 0 || p.clSeen >= 0 && p.clSeen != p.cl {
			return false // empty or conflicting Content-Length
		}
		p.clSeen = p.cl
	}
	p.field = fieldOther
	if !empty {
		return true
	}
	// The blank line ends the head.
	if p.upgrade {
		p.sawUpgrade = true
	}
	switch {
	case p.te:
		p.state = passThrough
	case p.clSeen > 0:
		p.state, p.remaining = inBody, p.clSeen
	default:
		p.startHead()
	}
	return true
}

func fieldOf(name []byte) int {
	switch string(name) {
	case "content-length":
		return fieldCL
	case "transfer-encoding":
		return fieldTE
	case "upgrade":
		return fieldUpgrade
	}
	return fieldOther
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
