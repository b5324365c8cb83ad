package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tarGzOf(t *testing.T, files map[string][]byte, gz bool) []byte {
	t.Helper()
	var b bytes.Buffer
	var w = &b
	var zw *gzip.Writer
	tw := tar.NewWriter(w)
	if gz {
		zw = gzip.NewWriter(w)
		tw = tar.NewWriter(zw)
	}
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	return b.Bytes()
}

type located struct{ Source, Rule string }

func locations(r *Report) []located {
	out := []located{}
	for _, f := range r.Findings {
		out = append(out, located{f.Source, f.Rule})
	}
	return out
}

func TestArchives(t *testing.T) {
	dir := t.TempDir()
	secret := "BINANCE_API_SECRET=" + randString(t, alnumChars, 64) + "\n"
	inner := zipOf(t, map[string][]byte{"deep/.env": []byte(secret)})
	writeFile(t, filepath.Join(dir, "bundle.zip"), string(zipOf(t, map[string][]byte{
		"app/config.env": []byte(secret),
		"app/logo.png":   append([]byte("\x89PNG\x00\x00"), secret...), // binary: skipped
		"nested.zip":     inner,
	})))
	writeFile(t, filepath.Join(dir, "backup.tar.gz"), string(tarGzOf(t, map[string][]byte{"home/bot/.env": []byte(secret)}, true)))
	writeFile(t, filepath.Join(dir, "backup.tar"), string(tarGzOf(t, map[string][]byte{"etc/bot.env": []byte(secret)}, false)))
	// three levels deep: beyond a depth limit of 2
	writeFile(t, filepath.Join(dir, "deep", "outer.zip"), string(zipOf(t, map[string][]byte{
		"mid.zip": zipOf(t, map[string][]byte{"inner.zip": inner}),
	})))

	s := New(Options{Limits: Limits{Depth: 2}})
	r, err := s.Scan(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.ToSlash(dir)
	want := []located{
		{d + "/backup.tar!etc/bot.env", "binance-api-secret"},
		{d + "/backup.tar.gz!home/bot/.env", "binance-api-secret"},
		{d + "/bundle.zip!app/config.env", "binance-api-secret"},
		{d + "/bundle.zip!nested.zip!deep/.env", "binance-api-secret"},
	}
	if diff := cmp.Diff(want, locations(r)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !hasSkip(r, d+"/deep/outer.zip!mid.zip!inner.zip", "archive nested too deep") {
		t.Errorf("skipped = %+v, want the third level reported as too deep", r.Skipped)
	}
}

func hasSkip(r *Report, source, reason string) bool {
	for _, s := range r.Skipped {
		if s.Source == source && strings.Contains(s.Reason, reason) {
			return true
		}
	}
	return false
}

// TestZipBomb: a small archive that expands far beyond the limits is cut
// off at the limits, not read to the end.
func TestZipBomb(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := range 20 {
		w, err := zw.Create(strings.Repeat("x", i+1) + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bytes.Repeat([]byte("A"), 1<<20)) // 1 MiB of one byte compresses to ~1 KiB
	}
	zw.Close()
	if b.Len() > 100<<10 {
		t.Fatalf("bomb is %d bytes, want a small archive", b.Len())
	}
	writeFile(t, filepath.Join(dir, "bomb.zip"), b.String())
	many := map[string][]byte{}
	for i := range 30 {
		many[strings.Repeat("y", i+1)] = []byte("x")
	}
	writeFile(t, filepath.Join(dir, "many.zip"), string(zipOf(t, many)))

	s := New(Options{Limits: Limits{ArchiveSize: 5 << 20, EntrySize: 2 << 20, Entries: 10}})
	r, err := s.Scan(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.ToSlash(dir)
	if r.Bytes > 5<<20+1<<10 { // the bomb, and many.zip's ten one-byte entries
		t.Errorf("read %d bytes, want at most the 5 MiB archive limit", r.Bytes)
	}
	if !hasSkip(r, d+"/bomb.zip", "archive size limit") {
		t.Errorf("skipped = %+v, want bomb.zip cut at the size limit", r.Skipped)
	}
	if !hasSkip(r, d+"/many.zip", "more than 10 entries") {
		t.Errorf("skipped = %+v, want many.zip cut at the entry limit", r.Skipped)
	}
}

func TestIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	secret := "BINANCE_API_SECRET=" + randString(t, alnumChars, 64) + "\n"
	for _, p := range []string{"a.env", "vendor/x/b.env", "docs/c.md", "docs/keep/d.md", "build/e.env", "sub/build/f.env", "g.min.js"} {
		writeFile(t, filepath.Join(dir, p), secret)
	}
	writeFile(t, filepath.Join(dir, IgnoreFile), "# generated and vendored\nvendor/\n/build\ndocs/**/*.md\n!docs/keep/*.md\n*.min.js\n")
	s := New(Options{})
	r, err := s.Scan(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.ToSlash(dir)
	want := []located{
		{d + "/a.env", "binance-api-secret"},
		{d + "/docs/keep/d.md", "binance-api-secret"},
		{d + "/sub/build/f.env", "binance-api-secret"},
	}
	if diff := cmp.Diff(want, locations(r)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	// Extra patterns add to the file; NoIgnoreFile drops the file.
	r, err = New(Options{Ignore: []string{"a.env", "sub/"}}).Scan(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]located{{d + "/docs/keep/d.md", "binance-api-secret"}}, locations(r)); diff != "" {
		t.Errorf("findings with extra patterns (-want +got):\n%s", diff)
	}
	r, err = New(Options{NoIgnoreFile: true}).Scan(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 7 {
		t.Errorf("findings without the ignore file = %v, want all 7", locations(r))
	}
}

func TestIgnorePatterns(t *testing.T) {
	ig := newIgnorer([]string{"*.lock", "/top.txt", "a/**/z", "logs/", "!keep.lock"})
	tests := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"x.lock", false, true},
		{"deep/dir/y.lock", false, true},
		{"keep.lock", false, false},
		{"top.txt", false, true},
		{"sub/top.txt", false, false},
		{"a/z", false, true},
		{"a/b/c/z", false, true},
		{"b/a/z", false, false},
		{"logs", true, true},
		{"logs", false, false},
		{"logs/today.txt", false, true},
		{"src/main.go", false, false},
	}
	for _, tt := range tests {
		if got := ig.match(tt.path, tt.isDir); got != tt.want {
			t.Errorf("match(%q, dir=%v) = %v, want %v", tt.path, tt.isDir, got, tt.want)
		}
	}
}

// TestStreamChunks: findings in a stream far larger than one chunk keep
// their line numbers, are reported once, and PEM blocks across a chunk
// boundary are found.
func TestStreamChunks(t *testing.T) {
	var b strings.Builder
	filler := strings.Repeat("just some ordinary text of a log file, nothing to see\n", 1000)
	var wantLines []int
	line := 1
	pem := pemKey(t, "ec")
	for i := range 200 {
		b.WriteString(filler)
		line += 1000
		if i%40 == 0 {
			b.WriteString("binance:\n")
			line++
			b.WriteString("  secret: " + randString(t, alnumChars, 64) + "\n")
			wantLines = append(wantLines, line)
			line++
		}
		if i%50 == 7 {
			wantLines = append(wantLines, line)
			b.WriteString(pem)
			line += strings.Count(pem, "\n")
		}
	}
	if b.Len() < 2*chunkSize {
		t.Fatalf("input is %d bytes, want several chunks", b.Len())
	}
	s := New(Options{})
	r, err := s.ScanReader(context.Background(), "-", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, f := range r.Findings {
		got = append(got, f.Line)
	}
	if diff := cmp.Diff(wantLines, got); diff != "" {
		t.Errorf("finding lines (-want +got):\n%s", diff)
	}
	if r.Bytes != int64(b.Len()) {
		t.Errorf("bytes = %d, want %d", r.Bytes, b.Len())
	}
}

func TestSARIF(t *testing.T) {
	s := New(Options{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.env"), "BINANCE_API_KEY="+randString(t, alnumChars, 64)+"\nBINANCE_API_SECRET="+randString(t, alnumChars, 64)+"\n")
	writeFile(t, filepath.Join(dir, "b.zip"), string(zipOf(t, map[string][]byte{"c.env": []byte("GATE_API_KEY=" + randHex(t, 32) + "\n")})))
	r, err := s.Scan(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteSARIF(&b); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	// Required by SARIF 2.1.0: version, runs; each run a tool.driver.name;
	// each result a message and (for code scanning) a location; ruleId
	// and ruleIndex consistent with driver.rules.
	if log["version"] != "2.1.0" || log["$schema"] == nil {
		t.Fatalf("version = %v, schema = %v", log["version"], log["$schema"])
	}
	runs := log["runs"].([]any)
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	if driver["name"] != "keywarden" {
		t.Errorf("driver name = %v", driver["name"])
	}
	rules := driver["rules"].([]any)
	results := run["results"].([]any)
	if len(results) != 3 {
		t.Fatalf("%d results, want 3", len(results))
	}
	for _, x := range results {
		res := x.(map[string]any)
		idx := int(res["ruleIndex"].(float64))
		if idx >= len(rules) || rules[idx].(map[string]any)["id"] != res["ruleId"] {
			t.Errorf("result ruleIndex %d does not name rule %v", idx, res["ruleId"])
		}
		msg := res["message"].(map[string]any)["text"].(string)
		if msg == "" {
			t.Error("result without message text")
		}
		loc := res["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)
		uri := loc["artifactLocation"].(map[string]any)["uri"].(string)
		region := loc["region"].(map[string]any)
		if uri == "" || strings.Contains(uri, "!") || region["startLine"].(float64) < 1 || region["startColumn"].(float64) < 1 {
			t.Errorf("location = %v", loc)
		}
		switch lvl := res["level"]; lvl {
		case "error", "warning", "note":
		default:
			t.Errorf("level = %v", lvl)
		}
	}
	// Nothing found: still a valid log with empty results.
	b.Reset()
	if err := (&Report{}).WriteSARIF(&b); err != nil || !strings.Contains(b.String(), `"results": []`) {
		t.Errorf("empty SARIF = %s, %v", b.String(), err)
	}
}

func TestReportsNeverShowSecrets(t *testing.T) {
	secret := randString(t, alnumChars, 64)
	s := New(Options{})
	r, err := s.ScanReader(context.Background(), "stdin", strings.NewReader("BINANCE_API_SECRET="+secret+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 {
		t.Fatalf("findings = %v", rulesOf(r.Findings))
	}
	for name, w := range map[string]func(*bytes.Buffer) error{
		"text":  func(b *bytes.Buffer) error { return r.WriteText(b) },
		"json":  func(b *bytes.Buffer) error { return r.WriteJSON(b) },
		"sarif": func(b *bytes.Buffer) error { return r.WriteSARIF(b) },
	} {
		var b bytes.Buffer
		if err := w(&b); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), secret[4:12]) {
			t.Errorf("%s report shows the secret", name)
		}
		if !strings.Contains(b.String(), secret[:4]+"…(64 chars)") {
			t.Errorf("%s report lacks the redacted form:\n%s", name, b.String())
		}
	}
}

// fakeMatcher knows some material; it counts what it is offered.
type fakeMatcher struct {
	tokens  map[string]*Live
	public  map[string]*Live
	offered atomic.Int64
}

func (m *fakeMatcher) Match(kind MaterialKind, b []byte) (*Live, bool) {
	m.offered.Add(1)
	set := m.tokens
	if kind == PublicKeyDER {
		set = m.public
	}
	l, ok := set[string(b)]
	return l, ok
}

func TestMatcher(t *testing.T) {
	known := randString(t, alnumChars, 64)
	unshaped := randString(t, alnumChars, 27) // no rule knows this shape
	cdp, priv := ed25519CDP(t)
	der, err := x509MarshalPub(priv)
	if err != nil {
		t.Fatal(err)
	}
	main := &Live{Kind: "exchange-key", Owner: "binance/main", Part: "secret", Exchange: "binance", Name: "main"}
	bot := &Live{Kind: "client", Owner: "binance/kwbot", Part: "secret", Venue: "binance", ClientID: "kwbot"}
	cb := &Live{Kind: "exchange-key", Owner: "coinbase/cdp", Part: "private key", Exchange: "coinbase", Name: "cdp"}
	m := &fakeMatcher{tokens: map[string]*Live{known: main, unshaped: bot}, public: map[string]*Live{string(der): cb}}
	s := New(Options{Matcher: m})
	text := "BINANCE_API_SECRET=" + known + "\nBINANCE_API_KEY=" + randString(t, alnumChars, 64) +
		"\nsomething: " + unshaped + "\nkey_file_contents: \"" + cdp + "\"\n"
	got := s.ScanBytes("bot.env", []byte(text))
	type row struct {
		Rule     string
		Severity Severity
		Owner    string
	}
	var rows []row
	for _, f := range got {
		o := ""
		if f.Live != nil {
			o = f.Live.Owner
		}
		rows = append(rows, row{f.Rule, f.Severity, o})
	}
	want := []row{
		{"binance-api-secret", Critical, "binance/main"},
		{"binance-api-key", Medium, ""},
		{"keywarden-live-key", Critical, "binance/kwbot"},
		{"coinbase-cdp-ed25519-key", Critical, "coinbase/cdp"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// A live key is reported whatever the comments around it say, and
	// even when it looks made up.
	counting := "Abc" + "0123456789" + randString(t, alnumChars, 51)
	m.tokens[counting] = main
	for _, text := range []string{
		"BINANCE_API_SECRET=" + known + " # keywarden:allow\n",
		"// test vector, not a real key\nsecret = \"" + known + "\"\n",
		"BINANCE_API_SECRET=" + counting + "\n",
	} {
		got := s.ScanBytes("x.env", []byte(text))
		if len(got) != 1 || got[0].Live == nil || got[0].Severity != Critical {
			t.Errorf("ScanBytes(allowed live key) = %v, want one critical live finding", rulesOf(got))
		}
	}
}

func x509MarshalPub(priv ed25519.PrivateKey) ([]byte, error) {
	return x509.MarshalPKIXPublicKey(priv.Public())
}
