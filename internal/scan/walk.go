package scan

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// IgnoreFile is the name of the ignore file read from each scanned root.
const IgnoreFile = ".keywardenignore"

// Scan scans files and directories (recursively; archives inside are
// opened). Unreadable inputs are listed in Report.Skipped; the error is
// for a cancelled context or a path that does not exist.
func (s *Scanner) Scan(ctx context.Context, paths []string) (*Report, error) {
	c := &collector{}
	type job struct{ path, name string }
	jobs := make(chan job, 64)
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				s.scanFile(ctx, j.path, j.name, c)
			}
		}()
	}
	var walkErr error
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			walkErr = fmt.Errorf("scan: %w", err)
			break
		}
		base := root
		if !info.IsDir() {
			base = filepath.Dir(root)
		}
		ign, err := s.ignoreFor(base)
		if err != nil {
			walkErr = err
			break
		}
		if !info.IsDir() {
			if !ign.match(filepath.Base(root), false) {
				jobs <- job{root, filepath.ToSlash(root)}
			}
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				s.skip(c, filepath.ToSlash(path), "unreadable")
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if path != root && (d.Name() == ".git" || ign.match(rel, true)) {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || ign.match(rel, false) {
				return nil
			}
			jobs <- job{path, filepath.ToSlash(path)}
			return nil
		})
		if err != nil {
			walkErr = err
			break
		}
	}
	close(jobs)
	wg.Wait()
	if walkErr != nil {
		return nil, walkErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.report(), nil
}

// ignoreFor returns the ignore rules for a root: its .keywardenignore and
// Options.Ignore.
func (s *Scanner) ignoreFor(root string) (*ignorer, error) {
	ign := newIgnorer(s.opts.Ignore)
	if s.opts.NoIgnoreFile {
		return ign, nil
	}
	b, err := os.ReadFile(filepath.Join(root, IgnoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ign, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	ign.add(string(b))
	return ign, nil
}

// scanFile scans one file, opening archives.
func (s *Scanner) scanFile(ctx context.Context, path, name string, c *collector) {
	f, err := os.Open(path)
	if err != nil {
		s.skip(c, name, "unreadable")
		return
	}
	defer f.Close()
	var hb [512]byte
	hn, _ := io.ReadFull(f, hb[:])
	head := hb[:hn]
	k := kindOf(head)
	if k != kindText && k != kindBinary {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			s.skip(c, name, "unreadable")
			return
		}
	}
	switch k {
	case kindZip:
		info, err := f.Stat()
		if err != nil {
			s.skip(c, name, "unreadable")
			return
		}
		budget := s.limits.ArchiveSize
		s.scanZip(ctx, f, info.Size(), name, 1, &budget, c)
		return
	case kindGzip, kindTar:
		budget := s.limits.ArchiveSize
		s.scanArchiveStream(ctx, bufio.NewReaderSize(f, 64<<10), head, name, 1, &budget, c)
		return
	case kindBinary:
		return
	}
	n, err := s.scanStreamSrc(ctx, source{name: name}, head, f, c.add)
	c.count(n)
	if err != nil && ctx.Err() == nil {
		s.skip(c, name, "read error")
	}
}

type contentKind int

const (
	kindText contentKind = iota
	kindBinary
	kindZip
	kindGzip
	kindTar
)

// kindOf sniffs the first bytes of a file.
func kindOf(head []byte) contentKind {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return kindZip
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return kindGzip
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return kindTar
	case bytes.IndexByte(head, 0) >= 0:
		return kindBinary
	}
	return kindText
}

// errBudget: the archive's uncompressed size bound was reached.
var errBudget = errors.New("archive size limit reached")

// budgetReader counts down the archive budget.
type budgetReader struct {
	r      io.Reader
	budget *int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if *b.budget <= 0 {
		return 0, errBudget
	}
	if int64(len(p)) > *b.budget {
		p = p[:*b.budget]
	}
	n, err := b.r.Read(p)
	*b.budget -= int64(n)
	return n, err
}

// scanEntry scans one archive member: recursing into nested archives up
// to the depth limit, else as text. The member is bounded by EntrySize.
func (s *Scanner) scanEntry(ctx context.Context, r io.Reader, size int64, name string, depth int, budget *int64, c *collector) {
	if size > s.limits.EntrySize {
		s.skip(c, name, "entry larger than the entry size limit")
		return
	}
	br := bufio.NewReaderSize(&budgetReader{r: io.LimitReader(r, s.limits.EntrySize), budget: budget}, 64<<10)
	head, _ := br.Peek(512)
	k := kindOf(head)
	if k == kindBinary {
		return
	}
	if k != kindText {
		if depth >= s.limits.Depth {
			s.skip(c, name, "archive nested too deep")
			return
		}
		if k == kindZip {
			// zip needs random access: read the member (bounded).
			b, err := io.ReadAll(br)
			if err != nil {
				s.skip(c, name, limitReason(err))
				return
			}
			s.scanZip(ctx, bytes.NewReader(b), int64(len(b)), name, depth+1, budget, c)
			return
		}
		s.scanArchiveStream(ctx, br, head, name, depth+1, budget, c)
		return
	}
	n, err := s.scanStream(ctx, name, br, c.add)
	c.count(n)
	if err != nil && ctx.Err() == nil {
		s.skip(c, name, limitReason(err))
	}
}

func limitReason(err error) string {
	if errors.Is(err, errBudget) {
		return "archive size limit reached; rest not scanned"
	}
	return "read error"
}

// scanZip scans the members of a zip archive.
func (s *Scanner) scanZip(ctx context.Context, ra io.ReaderAt, size int64, name string, depth int, budget *int64, c *collector) {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		s.skip(c, name, "malformed zip")
		return
	}
	if len(zr.File) > s.limits.Entries {
		s.skip(c, name, fmt.Sprintf("more than %d entries; only the first %d scanned", s.limits.Entries, s.limits.Entries))
	}
	for i, zf := range zr.File {
		if i >= s.limits.Entries || ctx.Err() != nil || *budget <= 0 {
			break
		}
		if zf.FileInfo().IsDir() {
			continue
		}
		member := name + "!" + zf.Name
		if int64(zf.UncompressedSize64) > s.limits.EntrySize || zf.UncompressedSize64 > 1<<62 {
			s.skip(c, member, "entry larger than the entry size limit")
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			s.skip(c, member, "unreadable entry")
			continue
		}
		s.scanEntry(ctx, rc, int64(zf.UncompressedSize64), member, depth, budget, c)
		rc.Close()
	}
	if *budget <= 0 {
		s.skip(c, name, "archive size limit reached; rest not scanned")
	}
}

// scanArchiveStream scans a tar, tar.gz or gzip stream.
func (s *Scanner) scanArchiveStream(ctx context.Context, r *bufio.Reader, head []byte, name string, depth int, budget *int64, c *collector) {
	var in io.Reader = r
	if kindOf(head) == kindGzip {
		zr, err := gzip.NewReader(r)
		if err != nil {
			s.skip(c, name, "malformed gzip")
			return
		}
		defer zr.Close()
		inner := bufio.NewReaderSize(&budgetReader{r: zr, budget: budget}, 64<<10)
		ih, _ := inner.Peek(512)
		if kindOf(ih) != kindTar {
			// a plain .gz: one member
			s.scanEntry(ctx, inner, 0, name+"!"+strings.TrimSuffix(filepath.Base(name), ".gz"), depth, budget, c)
			return
		}
		in = inner
	}
	tr := tar.NewReader(in)
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return
		}
		if i >= s.limits.Entries {
			s.skip(c, name, fmt.Sprintf("more than %d entries; only the first %d scanned", s.limits.Entries, s.limits.Entries))
			return
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.skip(c, name, limitReason(err))
			return
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		s.scanEntry(ctx, tr, h.Size, name+"!"+h.Name, depth, budget, c)
		if *budget <= 0 {
			s.skip(c, name, "archive size limit reached; rest not scanned")
			return
		}
	}
}
