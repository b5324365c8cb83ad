//go:build linux || darwin || freebsd || netbsd || openbsd

package upstream

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// writeRequest writes the whole request b on cn. On a plain TCP connection
// it writes b from inside a wait for readability on the socket, and returns
// once the answer has started to arrive (or the read deadline, which a
// cancelled context also moves, ends the wait). The first read of the answer
// then finds data: without the wait, Go's poller first tries a read, which
// finds nothing while the venue is still working, and only then parks.
//
// The write happens inside the wait, after the poller was armed for this
// read, so an answer that arrives at once is not missed. A write that does
// not complete at once (a full socket buffer) is finished the ordinary way,
// with the request's deadline as the write deadline. Over TLS the record
// layer writes, so the request goes out through the TLS connection and the
// read is ordinary.
func (cn *conn) writeRequest(b []byte, deadline time.Time) error {
	if cn.raw != nil && cn.br.Buffered() == 0 {
		w := &cn.rw
		*w = rawWrite{fn: w.fn, b: b}
		// The wait's own error (a deadline, a closed connection) is not
		// returned: the read that follows meets it again and reports it
		// as it reports any failure to read an answer.
		_ = cn.raw.Read(w.fn)
		n, werr, called := w.n, w.err, w.called
		w.b = nil
		if werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
		if called && n == len(b) {
			return nil
		}
		b = b[n:]
	}
	// deadline is the request's (zero: none).
	cn.nc.SetWriteDeadline(deadline)
	_, err := cn.nc.Write(b)
	return err
}

// rawWrite is one writeRequest's write inside the wait.
type rawWrite struct {
	fn     func(fd uintptr) bool // step, bound once
	b      []byte
	n      int
	err    error
	called bool
}

// step is the RawConn.Read callback: the first call writes, and asks to
// wait (false) only when the whole request is out; later calls end the
// wait.
func (w *rawWrite) step(fd uintptr) bool {
	if w.called {
		return true
	}
	w.called = true
	w.n, w.err = writeFD(fd, w.b)
	return w.err != nil || w.n < len(w.b)
}

// writeFD writes b to the non-blocking socket fd once: n bytes were
// written; a full socket buffer is not an error (n < len(b)).
func writeFD(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), b)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK):
			return 0, nil
		}
		return 0, err
	}
}
