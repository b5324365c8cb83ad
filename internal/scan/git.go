package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// The git history scan uses git's plumbing through os/exec rather than a
// Go implementation of git: the repository needs git anyway, git reads
// every object format and pack it writes, and no dependency is added.
// Object names and paths go to git on stdin (cat-file --batch); nothing
// found is ever passed to git.

// blob is one object to scan.
type blob struct {
	sha, path string
	data      []byte
}

// ScanGit scans every blob reachable from any ref of the repository at
// dir (all branches, tags and their whole history), each blob once, and
// names the commit that introduced each leaked blob.
func (s *Scanner) ScanGit(ctx context.Context, dir string) (*Report, error) {
	top, err := gitTop(ctx, dir)
	if err != nil {
		return nil, err
	}
	ign, err := s.ignoreFor(top)
	if err != nil {
		return nil, err
	}
	// every object with the path it was first seen at
	out, err := gitOutput(ctx, top, nil, "rev-list", "--all", "--objects")
	if err != nil {
		return nil, err
	}
	var objs []blob
	for _, l := range strings.Split(string(out), "\n") {
		sha, p, ok := strings.Cut(l, " ")
		if !ok || p == "" || ign.match(p, false) {
			continue
		}
		objs = append(objs, blob{sha: sha, path: p})
	}
	c := &collector{}
	err = s.scanObjects(ctx, top, objs, c, func(b blob, fs []Finding) {
		commit := introducedIn(ctx, top, b.sha)
		for i := range fs {
			fs[i].Commit = commit
			fs[i].ID = findingID(&fs[i])
			c.add(fs[i])
		}
	})
	if err != nil {
		return nil, err
	}
	return c.report(), nil
}

// ScanStaged scans the staged version of every added, copied, modified or
// renamed file in the repository at dir: what a pre-commit hook checks.
func (s *Scanner) ScanStaged(ctx context.Context, dir string) (*Report, error) {
	top, err := gitTop(ctx, dir)
	if err != nil {
		return nil, err
	}
	ign, err := s.ignoreFor(top)
	if err != nil {
		return nil, err
	}
	out, err := gitOutput(ctx, top, nil, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--no-renames")
	if err != nil {
		return nil, err
	}
	var objs []blob
	for _, p := range strings.Split(string(out), "\x00") {
		if p == "" || strings.ContainsAny(p, "\n") || ign.match(p, false) {
			continue
		}
		objs = append(objs, blob{sha: ":" + p, path: p})
	}
	c := &collector{}
	err = s.scanObjects(ctx, top, objs, c, func(_ blob, fs []Finding) {
		for _, f := range fs {
			c.add(f)
		}
	})
	if err != nil {
		return nil, err
	}
	return c.report(), nil
}

// scanObjects reads objs through one git cat-file --batch and scans the
// blobs on the scanner's workers; done gets each blob's findings.
func (s *Scanner) scanObjects(ctx context.Context, top string, objs []blob, c *collector, done func(blob, []Finding)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "-C", top, "cat-file", "--batch")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for _, o := range objs {
			if ctx.Err() != nil {
				break
			}
			w.WriteString(o.sha)
			w.WriteByte('\n')
		}
		w.Flush()
		stdin.Close()
	}()

	work := make(chan blob, s.opts.Workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				sub := &collector{}
				s.scanEntry(ctx, bytes.NewReader(b.data), int64(len(b.data)), b.path, 1, ptr(s.limits.ArchiveSize), sub)
				mu.Lock()
				c.files += sub.files
				c.bytes += sub.bytes
				c.skipped = append(c.skipped, sub.skipped...)
				mu.Unlock()
				if len(sub.findings) > 0 {
					done(b, sub.findings)
				}
			}
		}()
	}
	readErr := s.readBatch(ctx, bufio.NewReaderSize(stdout, 1<<20), objs, work, c)
	close(work)
	wg.Wait()
	if readErr != nil {
		cancel()
		_ = cmd.Wait()
		return readErr
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git cat-file: %w: %s", err, firstLine(stderr.String()))
	}
	return ctx.Err()
}

func ptr[T any](v T) *T { return &v }

// readBatch reads cat-file --batch answers in request order.
func (s *Scanner) readBatch(ctx context.Context, r *bufio.Reader, objs []blob, work chan<- blob, c *collector) error {
	for _, o := range objs {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("git cat-file: %w", err)
		}
		f := strings.Fields(hdr)
		if len(f) == 2 && f[1] == "missing" {
			c.mu.Lock()
			c.skipped = append(c.skipped, Skipped{Source: o.path, Reason: "object missing"})
			c.mu.Unlock()
			continue
		}
		if len(f) != 3 {
			return fmt.Errorf("git cat-file: unexpected answer %q", firstLine(hdr))
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("git cat-file: unexpected size %q", f[2])
		}
		if f[1] != "blob" || size > s.limits.EntrySize {
			if f[1] == "blob" {
				c.mu.Lock()
				c.skipped = append(c.skipped, Skipped{Source: o.path, Reason: "blob larger than the entry size limit"})
				c.mu.Unlock()
			}
			if _, err := io.CopyN(io.Discard, r, size+1); err != nil {
				return fmt.Errorf("git cat-file: %w", err)
			}
			continue
		}
		data := make([]byte, size+1)
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("git cat-file: %w", err)
		}
		o.data = data[:size]
		select {
		case work <- o:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// introducedIn names the oldest commit that added blob sha, or "".
func introducedIn(ctx context.Context, top, sha string) string {
	out, err := gitOutput(ctx, top, nil, "log", "--all", "--reverse", "--format=%H", "--find-object="+sha)
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return first
}

// gitTop returns the top directory of the work tree holding dir.
func gitTop(ctx context.Context, dir string) (string, error) {
	out, err := gitOutput(ctx, dir, nil, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("%s is not in a git work tree: %w", dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitOutput runs git in dir. Arguments never hold scanned content.
func gitOutput(ctx context.Context, dir string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("git %s: %s", args[0], firstLine(stderr.String()))
		}
		return nil, fmt.Errorf("git %s: %w", args[0], err)
	}
	return out, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
