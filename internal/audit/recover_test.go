package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecoverTail(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string, lines []string) // lines of the last segment
		wantOpen bool
		wantLast uint64 // last seq kept
		wantTorn bool   // a .torn file is left
	}{
		{"partial last line", func(t *testing.T, dir string, ls []string) {
			appendBytes(t, dir, ls[2][:40])
		}, true, 10, true},
		{"zeros after last line (pre-allocated tail)", func(t *testing.T, dir string, ls []string) {
			appendBytes(t, dir, string(make([]byte, 300)))
		}, true, 10, false},
		{"partial record over the zero tail", func(t *testing.T, dir string, ls []string) {
			appendBytes(t, dir, ls[2][:40]+string(make([]byte, 3000)))
		}, true, 10, true},
		{"complete record over the zero tail without its newline", func(t *testing.T, dir string, ls []string) {
			b, _ := os.ReadFile(filepath.Join(dir, lastSeg(t, dir)))
			os.WriteFile(filepath.Join(dir, lastSeg(t, dir)), append(b[:len(b)-1], make([]byte, 500)...), 0o600)
		}, true, 10, false},
		{"bytes a crash left beyond the zeros", func(t *testing.T, dir string, ls []string) {
			// a batch whose later page reached the disk before its first
			appendBytes(t, dir, string(make([]byte, 4096))+ls[2]+"\n")
		}, true, 10, true},
		{"last record without its newline", func(t *testing.T, dir string, ls []string) {
			writeSeg(t, dir, lastSeg(t, dir), ls)
			b, _ := os.ReadFile(filepath.Join(dir, lastSeg(t, dir)))
			os.WriteFile(filepath.Join(dir, lastSeg(t, dir)), b[:len(b)-1], 0o600)
		}, true, 10, false},
		{"torn last record", func(t *testing.T, dir string, ls []string) {
			n := len(ls)
			ls[n-1] = ls[n-1][:len(ls[n-1])-20]
			s := strings.Join(ls, "\n") // no final newline
			os.WriteFile(filepath.Join(dir, lastSeg(t, dir)), []byte(s), 0o600)
		}, true, 9, true},
		{"bad line followed by a valid record", func(t *testing.T, dir string, ls []string) {
			n := len(ls)
			ls[n-2] = strings.Replace(ls[n-2], `"quantity":0.01`, `"quantity":10`, 1)
			writeSeg(t, dir, lastSeg(t, dir), ls)
		}, false, 0, false},
		{"damage in a closed segment", func(t *testing.T, dir string, ls []string) {
			segs, _ := listSegments(dir)
			first := readSeg(t, dir, segs[0])
			first[1] = strings.Replace(first[1], `"quantity":0.01`, `"quantity":10`, 1)
			writeSeg(t, dir, segs[0], first)
		}, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// No signer: no checkpoints, so the last segment ends in
			// intents, as after a crash.
			l, err := Open(Options{Dir: dir, SegmentSize: 4000})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				mustAppend(t, l, intentRecord(i))
			}
			l.Close()
			if n := len(readSeg(t, dir, lastSeg(t, dir))); n < 3 {
				t.Fatalf("last segment has %d lines, want at least 3", n)
			}
			tt.damage(t, dir, readSeg(t, dir, lastSeg(t, dir)))
			l2, err := Open(Options{Dir: dir, Signer: testKey()})
			if !tt.wantOpen {
				var ve *VerifyError
				if err == nil || !errors.As(err, &ve) {
					t.Fatalf("Open(damaged) = %v, want a *VerifyError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(torn) = %v", err)
			}
			if got := l2.Head().Seq; got != tt.wantLast {
				t.Errorf("Head after recovery = %d, want %d", got, tt.wantLast)
			}
			rc, err := l2.Append(context.Background(), intentRecord(99))
			if err != nil || rc.Seq != tt.wantLast+1 {
				t.Errorf("Append after recovery = %+v, %v, want seq %d", rc, err, tt.wantLast+1)
			}
			l2.Close()
			if _, err := Verify(dir, testPub()); err != nil {
				t.Errorf("Verify after recovery = %v", err)
			}
			torn, _ := filepath.Glob(filepath.Join(dir, "*.torn.*"))
			if (len(torn) > 0) != tt.wantTorn {
				t.Errorf("torn files = %v, want present=%v", torn, tt.wantTorn)
			}
		})
	}
}

func lastSeg(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("listSegments = %v, %v", segs, err)
	}
	return segs[len(segs)-1]
}

func appendBytes(t *testing.T, dir, s string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, lastSeg(t, dir)), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
