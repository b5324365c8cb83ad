// Command testsummary reads `go test -json` on stdin and writes a readable
// report: the output of every failed test and package as it happens, and at
// the end a table of tests passed, failed and skipped per category of the
// security battery (spec/security.md §4): A hostile requests, F faults, C
// crash, L load, Z fuzz seeds, G audit tamper evidence, V vault lifecycle,
// H hygiene, and other. It exits 1 when any test or package failed.
//
//	go test -json ./... | tee test.json | go run ./scripts/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Categories in the order the table lists them.
var categories = []string{"A", "F", "C", "L", "Z", "G", "V", "H", "other"}

var (
	// A subtest or test named by its battery id: "A12/...", "TestFault_F3_...".
	idRe = regexp.MustCompile(`(?:^|[/_])([AFCLZGVH])([0-9]+)(?:[/_]|$)`)
	// Named by category word.
	wordRe = []struct {
		re  *regexp.Regexp
		cat string
	}{
		{regexp.MustCompile(`^TestHostile`), "A"},
		{regexp.MustCompile(`^TestFault`), "F"},
		{regexp.MustCompile(`^TestCrash`), "C"},
		{regexp.MustCompile(`^TestLoad`), "L"},
		{regexp.MustCompile(`^Fuzz`), "Z"},
		{regexp.MustCompile(`^Test(Tamper|Verify|Witness)`), "G"},
		{regexp.MustCompile(`^TestVault`), "V"},
		{regexp.MustCompile(`^TestHygiene|^TestSecretHygiene|Secret(s)?Never`), "H"},
	}
)

// vaultPkgs hold the vault lifecycle tests (V) whatever their names.
var vaultPkgs = []string{"/internal/vault", "/internal/shamir"}

// category classifies a test by the battery id in its name, then by its
// package (vault lifecycle), then by the words its name starts with.
func category(pkg, name string) string {
	if m := idRe.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	if strings.HasPrefix(name, "Fuzz") {
		return "Z"
	}
	for _, p := range vaultPkgs {
		if strings.HasSuffix(pkg, p) {
			return "V"
		}
	}
	top, _, _ := strings.Cut(name, "/")
	for _, w := range wordRe {
		if w.re.MatchString(top) {
			return w.cat
		}
	}
	return "other"
}

// counts is passed, failed, skipped.
type counts [3]int

type summary struct {
	byCat      map[string]*counts
	failed     []string
	pkgFailed  []string
	output     map[string][]string // test key → output lines, kept until it ends
	parents    map[string]bool     // tests that have subtests
	results    map[string]string   // test key → action
	anyFailure bool
}

func newSummary() *summary {
	s := &summary{byCat: map[string]*counts{}, output: map[string][]string{}, parents: map[string]bool{}, results: map[string]string{}}
	for _, c := range categories {
		s.byCat[c] = &counts{}
	}
	return s
}

// add consumes one event, writing failure output to w as tests fail.
func (s *summary) add(e event, w io.Writer) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "run":
		// A subtest name may itself contain "/", so every prefix may
		// be the parent; prefixes that never run are never counted.
		for i := range len(e.Test) {
			if e.Test[i] == '/' {
				s.parents[e.Package+" "+e.Test[:i]] = true
			}
		}
	case "output", "build-output":
		if len(s.output[key]) < 2000 {
			s.output[key] = append(s.output[key], e.Output)
		}
	case "pass", "fail", "skip":
		if e.Test == "" {
			if e.Action == "fail" {
				s.anyFailure = true
				s.pkgFailed = append(s.pkgFailed, e.Package)
				fmt.Fprintf(w, "--- FAIL package %s\n%s", e.Package, strings.Join(s.output[key], ""))
			}
			delete(s.output, key)
			return
		}
		s.results[key] = e.Action
		if e.Action == "fail" {
			s.anyFailure = true
			s.failed = append(s.failed, e.Package+" "+e.Test)
			if !s.parents[key] {
				fmt.Fprintf(w, "--- FAIL %s %s\n%s", e.Package, e.Test, strings.Join(s.output[key], ""))
			}
		}
		delete(s.output, key)
	}
}

// table counts leaf tests per category and writes the summary.
func (s *summary) table(w io.Writer) {
	keys := make([]string, 0, len(s.results))
	for k := range s.results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s.parents[k] {
			continue // counted through its subtests
		}
		pkg, name, _ := strings.Cut(k, " ")
		c := s.byCat[category(pkg, name)]
		switch s.results[k] {
		case "pass":
			c[0]++
		case "fail":
			c[1]++
		case "skip":
			c[2]++
		}
	}
	fmt.Fprintf(w, "\n%-8s %7s %7s %7s\n", "category", "passed", "failed", "skipped")
	var total counts
	for _, cat := range categories {
		c := s.byCat[cat]
		fmt.Fprintf(w, "%-8s %7d %7d %7d\n", cat, c[0], c[1], c[2])
		for i := range c {
			total[i] += c[i]
		}
	}
	fmt.Fprintf(w, "%-8s %7d %7d %7d\n", "total", total[0], total[1], total[2])
	if len(s.failed) > 0 || len(s.pkgFailed) > 0 {
		fmt.Fprintln(w, "\nFAILED:")
		for _, p := range s.pkgFailed {
			fmt.Fprintln(w, "  package", p)
		}
		for _, f := range s.failed {
			fmt.Fprintln(w, "  "+f)
		}
	}
}

// run reads events from r; lines that are not JSON are passed through
// unchanged. failed reports whether any test or package failed.
func run(r io.Reader, w io.Writer) (failed bool, err error) {
	s := newSummary()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		s.add(e, w)
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	s.table(w)
	return s.anyFailure, nil
}

func main() {
	failed, err := run(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
