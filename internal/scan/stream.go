package scan

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
)

const (
	// chunkSize is how much of a stream is scanned at once.
	chunkSize = 4 << 20
	// overlapLines of the previous chunk are scanned again as context
	// (their findings are not reported twice).
	overlapLines = contextLines + 1
)

// scanStream scans r in chunks cut at line ends, so memory stays bounded
// whatever the input's size. A PEM block is never cut; a single line
// longer than a chunk is cut where the chunk ends.
func (s *Scanner) scanStream(ctx context.Context, name string, r io.Reader, emit func(Finding)) (int64, error) {
	return s.scanStreamSrc(ctx, source{name: name}, nil, r, emit)
}

// bufPool holds chunk buffers; they are cleared before they go back, so
// scanned content does not linger.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize+maxPEM); return &b }}

// scanStreamSrc scans head (bytes already read from r) and then r.
func (s *Scanner) scanStreamSrc(ctx context.Context, src source, head []byte, r io.Reader, emit func(Finding)) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	buf := append((*bp)[:0], head...)
	used := len(buf)
	total := int64(len(buf))
	defer func() {
		clear(buf[:max(used, len(buf))])
		*bp = buf[:0]
		bufPool.Put(bp)
	}()
	line := 1  // line number of buf[0]
	carry := 0 // bytes at the start of buf already scanned
	eof := false
	for !eof {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		// fill
		for len(buf) < chunkSize && !eof {
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			used = max(used, len(buf))
			total += int64(n)
			if errors.Is(err, io.EOF) {
				eof = true
			} else if err != nil {
				return total, err
			}
			if n == 0 && err == nil {
				continue
			}
		}
		cut := len(buf)
		if !eof {
			cut = cutPoint(buf, carry)
		}
		s.scanContent(buf[:cut], src, line, carry, emit)
		if eof {
			break
		}
		// keep the last lines as context for the next chunk
		keep := cut
		for range overlapLines {
			if keep == 0 {
				break
			}
			keep = bytes.LastIndexByte(buf[:keep-1], '\n') + 1
		}
		keep = max(keep, cut-contextBytes)
		if keep > 0 && buf[keep-1] != '\n' {
			if i := bytes.IndexByte(buf[keep:cut], '\n'); i >= 0 {
				keep += i + 1
			}
		}
		line += bytes.Count(buf[:keep], []byte{'\n'})
		rest := copy(buf, buf[keep:])
		buf = buf[:rest]
		carry = cut - keep
	}
	return total, nil
}

// cutPoint is where to end this chunk: after the last line end, or before
// an unterminated PEM block near the end. carry bytes are already scanned.
func cutPoint(buf []byte, carry int) int {
	cut := bytes.LastIndexByte(buf, '\n') + 1
	if cut <= carry {
		return len(buf) // one long line: cut anywhere
	}
	from := max(carry, cut-maxPEM)
	if b := bytes.LastIndex(buf[from:cut], pemBegin); b >= 0 {
		b += from
		if !bytes.Contains(buf[b:cut], pemEnd) {
			if ls := bytes.LastIndexByte(buf[:b], '\n') + 1; ls > carry {
				return ls
			}
		}
	}
	return cut
}
