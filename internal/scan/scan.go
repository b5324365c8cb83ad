// Package scan finds leaked exchange API keys, secrets, passphrases and
// private keys in files, directories, archives, standard input and git
// history, and tells when a leak is one of the operator's live keys.
//
// Detection is one pass over the bytes: a table-driven tokenizer picks out
// runs of key-like characters, and only runs of a plausible length are
// looked at further (venue shape, character classes, Shannon entropy, and
// context keywords on the same and the preceding lines). PEM private keys
// are found by their armour, decoded and parsed, so a truncated example is
// not a finding. Known published examples, lines marked as test vectors,
// `keywarden:allow` comments and .keywardenignore globs are not reported.
//
// Security: a Finding never holds the secret. It carries a redacted form
// (the first four characters and the length) and nothing else; the
// material is offered to the optional Matcher while the bytes are scanned
// and dropped afterwards. Nothing found is ever logged, and secrets are
// never put in the arguments of the git processes the scanner runs.
//
// A Scanner is safe for concurrent use; Scan runs one walk at a time per
// call and uses Options.Workers goroutines.
package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"sync"
)

// Severity ranks a finding.
type Severity string

// Severities, highest first.
const (
	// Critical: the material is one of the operator's live keys.
	Critical Severity = "critical"
	// High: a secret or private key of a known shape.
	High Severity = "high"
	// Medium: an API key id, a passphrase, or a generic high-entropy
	// secret.
	Medium Severity = "medium"
)

// Finding is one leak. It never holds the secret itself.
type Finding struct {
	Rule     string   `json:"rule"`
	Venue    string   `json:"venue,omitempty"`
	What     string   `json:"what"`
	Severity Severity `json:"severity"`
	// Source is the file path; inside an archive "archive.zip!dir/file";
	// in git history the path in the commit.
	Source string `json:"source"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	// Commit is the git commit that introduced the leaked blob, when the
	// finding comes from history.
	Commit string `json:"commit,omitempty"`
	// Redacted is the first four characters and the length.
	Redacted string `json:"redacted"`
	Length   int    `json:"length"`
	// ID is a stable identifier of the finding (rule, source, line and a
	// hash of the redacted form), for SARIF and de-duplication; it does
	// not reveal the secret.
	ID string `json:"id"`
	// Live names the operator's key when the material matched it.
	Live *Live `json:"live,omitempty"`
}

// Live says whose live key a finding is.
type Live struct {
	// Kind is "exchange-key" or "client".
	Kind string `json:"kind"`
	// Owner is "binance/main" for an exchange key, "binance/kw…" for a
	// client credential.
	Owner string `json:"owner"`
	// Part is what matched: "api key id", "secret", "private key",
	// "passphrase" or "client id".
	Part string `json:"part"`
	// Exchange and Name identify an exchange key (Kind exchange-key);
	// Venue and ID a client credential.
	Exchange string `json:"exchange,omitempty"`
	Name     string `json:"name,omitempty"`
	Venue    string `json:"venue,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

// MaterialKind says what bytes a Matcher is offered.
type MaterialKind int

const (
	// Token is the candidate exactly as it was written.
	Token MaterialKind = iota
	// PublicKeyDER is the PKIX DER of a found private key's public half.
	PublicKeyDER
)

// Matcher recognises the operator's live keys. Match must be safe for
// concurrent use and must not keep material.
type Matcher interface {
	Match(kind MaterialKind, material []byte) (*Live, bool)
}

// Options configure a Scanner. Zero values mean the defaults.
type Options struct {
	// Matcher, when set, is offered every candidate, including
	// high-entropy tokens no rule recognised.
	Matcher Matcher
	// Logger receives skipped inputs at debug level (names, never
	// content).
	Logger *slog.Logger
	// Workers scanning files at once; default GOMAXPROCS.
	Workers int
	// Limits bound archive expansion. Plain files and streams of any
	// size are scanned in chunks, in bounded memory.
	Limits Limits
	// Ignore holds extra gitignore-like patterns on top of
	// .keywardenignore files.
	Ignore []string
	// NoIgnoreFile disables reading .keywardenignore.
	NoIgnoreFile bool
}

// Limits bound archive expansion against zip bombs.
type Limits struct {
	// Depth of archives inside archives (default 3).
	Depth int
	// Entries per archive (default 10000).
	Entries int
	// EntrySize is the largest entry read (default 64 MiB).
	EntrySize int64
	// ArchiveSize is the total uncompressed bytes read from one
	// top-level archive, nested ones included (default 512 MiB).
	ArchiveSize int64
}

func (l Limits) withDefaults() Limits {
	if l.Depth <= 0 {
		l.Depth = 3
	}
	if l.Entries <= 0 {
		l.Entries = 10000
	}
	if l.EntrySize <= 0 {
		l.EntrySize = 64 << 20
	}
	if l.ArchiveSize <= 0 {
		l.ArchiveSize = 512 << 20
	}
	return l
}

// Skipped is an input that was not (fully) scanned, and why.
type Skipped struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Report is the result of a scan.
type Report struct {
	Findings []Finding `json:"findings"`
	Skipped  []Skipped `json:"skipped,omitempty"`
	// Files and Bytes count what was scanned (archive entries and git
	// blobs included).
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// Scanner finds secrets. See the package documentation.
type Scanner struct {
	opts   Options
	limits Limits
	log    *slog.Logger
}

// New returns a Scanner.
func New(opts Options) *Scanner {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{opts: opts, limits: opts.Limits.withDefaults(), log: log}
}

// collector gathers findings from concurrent workers.
type collector struct {
	mu       sync.Mutex
	findings []Finding
	skipped  []Skipped
	files    int64
	bytes    int64
}

func (c *collector) add(f Finding) {
	c.mu.Lock()
	c.findings = append(c.findings, f)
	c.mu.Unlock()
}

func (c *collector) skip(source, reason string) {
	c.mu.Lock()
	c.skipped = append(c.skipped, Skipped{Source: source, Reason: reason})
	c.mu.Unlock()
}

func (c *collector) count(n int64) {
	c.mu.Lock()
	c.files++
	c.bytes += n
	c.mu.Unlock()
}

func (c *collector) report() *Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Report{Findings: c.findings, Skipped: c.skipped, Files: c.files, Bytes: c.bytes}
	sortFindings(r.Findings)
	sort.Slice(r.Skipped, func(i, j int) bool { return r.Skipped[i].Source < r.Skipped[j].Source })
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	return r
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Commit != b.Commit {
			return a.Commit < b.Commit
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Rule < b.Rule
	})
}

// ScanReader scans one stream (standard input, say) named name.
func (s *Scanner) ScanReader(ctx context.Context, name string, r io.Reader) (*Report, error) {
	c := &collector{}
	n, err := s.scanStream(ctx, name, r, c.add)
	c.count(n)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", name, err)
	}
	return c.report(), nil
}

// ScanBytes scans b, named name. It does not look inside archives.
func (s *Scanner) ScanBytes(name string, b []byte) []Finding {
	var out []Finding
	s.scanContent(b, source{name: name}, 1, 0, func(f Finding) { out = append(out, f) })
	sortFindings(out)
	return out
}

// findingID is a stable, non-revealing identifier of a finding.
func findingID(f *Finding) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%s", f.Rule, f.Source, f.Commit, f.Line, f.Redacted)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// redact shows the first four characters and the length, never more.
func redact(b []byte) string {
	n := len(b)
	k := min(4, n/4) // short values show less
	return fmt.Sprintf("%s…(%d chars)", sanitize(b[:k]), n)
}

// sanitize keeps printable ASCII only.
func sanitize(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

// Merge adds o's findings, skipped inputs and counts to r, keeping the
// findings sorted.
func (r *Report) Merge(o *Report) {
	if o == nil {
		return
	}
	r.Findings = append(r.Findings, o.Findings...)
	r.Skipped = append(r.Skipped, o.Skipped...)
	r.Files += o.Files
	r.Bytes += o.Bytes
	sortFindings(r.Findings)
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
}

// skip records an input that was not (fully) scanned and logs it at debug
// level (its name and the reason, never content).
func (s *Scanner) skip(c *collector, source, reason string) {
	s.log.Debug("scan skipped input", "source", source, "reason", reason)
	c.skip(source, reason)
}
