package exchange

import (
	"strings"
	"unsafe"
)

// SignScratch is memory a caller lends a Signer for what it writes into a
// Request: the signed body or query, the signature, the timestamp, and the
// one-value slices of the headers it sets. With it, signing a request
// allocates nothing in the steady state; without it (Request.Scratch nil),
// a Signer allocates what it writes, as it always did.
//
// Lifetime: the strings and bytes a Signer puts into a Request that has a
// Scratch point into the scratch's memory. They stay valid only until the
// scratch is Reset: whoever lends one must be done with the signed request
// (sent, and nothing of it kept) before Reset, and must not lend the same
// scratch to two requests at once. Request.Clone copies them out.
//
// Nothing secret is written here (signatures are derived values, the API
// key id is public), but Reset still wipes the memory.
type SignScratch struct {
	buf  []byte
	vals []string
}

// Scratch sizes: room for an order's signed body and a venue's auth headers
// without growing; a scratch grown past maxScratchBytes should be dropped
// rather than pooled (Large).
const (
	scratchBytes    = 2048
	scratchValues   = 8
	maxScratchBytes = 64 << 10
)

// NewSignScratch returns an empty scratch of the usual size.
func NewSignScratch() *SignScratch {
	return &SignScratch{buf: make([]byte, 0, scratchBytes), vals: make([]string, 0, scratchValues)}
}

// Reset wipes the scratch and makes all of it free again. Every string and
// slice handed out before is invalid afterwards.
func (s *SignScratch) Reset() {
	clear(s.buf[:cap(s.buf)])
	s.buf = s.buf[:0]
	clear(s.vals[:cap(s.vals)])
	s.vals = s.vals[:0]
}

// Large says the scratch grew past what a pool should keep.
func (s *SignScratch) Large() bool { return cap(s.buf) > maxScratchBytes }

// SignBuf returns an empty byte slice with room for n bytes, from r.Scratch
// when r has one. A Signer appends what it writes into it; appending past n
// still works (append moves it to the heap).
func (r *Request) SignBuf(n int) []byte {
	s := r.Scratch
	if s == nil {
		return make([]byte, 0, n)
	}
	if cap(s.buf)-len(s.buf) < n {
		// The old array stays alive while strings point into it; the
		// scratch continues in a new, larger one.
		s.buf = make([]byte, 0, max(2*cap(s.buf), n, scratchBytes))
	}
	l := len(s.buf)
	s.buf = s.buf[:l+n]
	return s.buf[l : l : l+n]
}

// SignString returns b as a string: without a copy when r has a Scratch (b
// must then come from r.SignBuf and must not be written again), a copy
// otherwise.
func (r *Request) SignString(b []byte) string {
	if r.Scratch == nil || len(b) == 0 {
		return string(b)
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// SetSignedHeader sets header name (in canonical form) to the single value
// v, in a one-value slice from r.Scratch when r has one. r.Header must not
// be nil.
func (r *Request) SetSignedHeader(name, v string) {
	s := r.Scratch
	if s == nil || len(s.vals) == cap(s.vals) {
		r.Header[name] = []string{v}
		return
	}
	n := len(s.vals)
	s.vals = append(s.vals, v)
	r.Header[name] = s.vals[n : n+1 : n+1]
}

// detach copies out of r (a clone, with its own header slices) every string
// that may point into a scratch, and forgets the scratch.
func (r *Request) detach() {
	r.Scratch = nil
	r.RawQuery = strings.Clone(r.RawQuery)
	for _, vs := range r.Header {
		for i, v := range vs {
			vs[i] = strings.Clone(v)
		}
	}
}
