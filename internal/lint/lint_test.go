package lint

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var wantRE = regexp.MustCompile(`// want (H[0-9]+-[a-z]+)`)

// wants reads the "// want RULE" comments of the Go files in dir, as
// "file:line RULE".
func wants(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var out []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(fh)
		for line := 1; s.Scan(); line++ {
			if m := wantRE.FindStringSubmatch(s.Text()); m != nil {
				out = append(out, filepath.ToSlash(f)+":"+itoa(line)+" "+m[1])
			}
		}
		fh.Close()
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// The analyzer reports every planted violation, on its line, and nothing
// in the package of near misses and comment-allowed uses.
func TestHygiene_H4_LintPlanted(t *testing.T) {
	got, err := Run(".", "./testdata/bad", "./testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range got {
		lines = append(lines, f.Pos.Filename+":"+itoa(f.Pos.Line)+" "+f.Rule)
		t.Log(f)
	}
	want := wants(t, "testdata/bad")
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	rules := map[string]bool{}
	for _, f := range got {
		rules[f.Rule] = true
	}
	for _, r := range []string{"H4-string", "H4-format", "H4-env", "H4-tls", "H5-compare"} {
		if !rules[r] {
			t.Errorf("no planted violation of %s was reported", r)
		}
	}
}

// The repository's non-test code has no finding beyond Allowed, each with
// its reason.
func TestHygiene_H4_LintRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the whole module")
	}
	got, err := Run("../..", "./...")
	if err != nil {
		t.Fatal(err)
	}
	used := make([]bool, len(Allowed))
	for _, f := range got {
		i := allowedBy(f)
		if i < 0 {
			t.Errorf("%s (in %s): fix it, or allow it with a //keywarden:allow %s <reason> comment", f, f.Func, f.Rule)
			continue
		}
		used[i] = true
	}
	for i, a := range Allowed {
		if a.Reason == "" {
			t.Errorf("Allowed entry %+v has no reason", a)
		}
		if !used[i] {
			t.Logf("Allowed entry %s %s %s matched nothing (fixed or moved?)", a.Rule, a.File, a.Func)
		}
	}
	t.Logf("%d findings, all allowed (%d entries)", len(got), len(Allowed))
}
