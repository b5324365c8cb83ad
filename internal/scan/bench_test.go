package scan

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds MB per CPU-second: what the scan costs, independent of
// how busy the machine is (wall-clock MB/s drops when other work shares
// the cores).
func reportCPU(b *testing.B, bytes int64, n int, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(bytes)*float64(n)/cpu.Seconds()/1e6, "MB/cpu-s")
	}
}

// plainTree returns the text of this module's own source tree (Go,
// Markdown, TOML, JSON, scripts): a realistic mix for throughput.
func plainTree(b *testing.B) map[string][]byte {
	b.Helper()
	files := map[string][]byte{}
	root := filepath.Join("..", "..")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".md", ".toml", ".json", ".sh", ".txtar", ".yaml", ".yml", ".sum", ".mod":
			if data, err := os.ReadFile(p); err == nil && !strings.Contains(p, "testdata/fp") {
				files[p] = data
			}
		}
		return nil
	})
	if len(files) == 0 {
		b.Skip("no source tree")
	}
	return files
}

// BenchmarkScanContent measures the detection pass alone (MB/s per core).
func BenchmarkScanContent(b *testing.B) {
	files := plainTree(b)
	var total int64
	for _, d := range files {
		total += int64(len(d))
	}
	s := New(Options{})
	b.SetBytes(total)
	b.ResetTimer()
	start, n := cpuTime(b), 0
	for b.Loop() {
		for name, d := range files {
			s.ScanBytes(name, d)
		}
		n++
	}
	reportCPU(b, total, n, cpuTime(b)-start)
}

// BenchmarkScanTree measures a whole directory scan from disk: walk,
// read, sniff and detect, on all cores.
func BenchmarkScanTree(b *testing.B) {
	files := plainTree(b)
	dir := b.TempDir()
	var total int64
	i := 0
	for _, d := range files {
		p := filepath.Join(dir, "d"+string(rune('a'+i%26)), filepath.Base(filepath.Dir(filepathSafe(i)))+"-"+itoa(i)+".txt")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, d, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(d))
		i++
	}
	s := New(Options{})
	b.SetBytes(total)
	b.ResetTimer()
	start, n := cpuTime(b), 0
	for b.Loop() {
		r, err := s.Scan(context.Background(), []string{dir})
		if err != nil {
			b.Fatal(err)
		}
		if r.Bytes != total {
			b.Fatalf("scanned %d bytes, want %d", r.Bytes, total)
		}
		n++
	}
	reportCPU(b, total, n, cpuTime(b)-start)
}

func filepathSafe(i int) string { return "f/" + itoa(i) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var s []byte
	for ; i > 0; i /= 10 {
		s = append([]byte{byte('0' + i%10)}, s...)
	}
	return string(s)
}
