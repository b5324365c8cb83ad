package scan

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// git runs git in dir with a fixed identity and no user configuration.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func needGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_GIT") != "" {
			t.Fatal("git is required")
		}
		t.Skip("git not installed")
	}
}

// TestGitHistory: a secret added and removed again on main, and one that
// lives only on a second branch, are both found, each with the commit
// that introduced it; the work tree itself is clean.
func TestGitHistory(t *testing.T) {
	needGit(t)
	dir := t.TempDir()
	git(t, dir, "init", "-q")
	writeFile(t, filepath.Join(dir, "README.md"), "trading bot\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "start")

	writeFile(t, filepath.Join(dir, "config.env"), "BINANCE_API_SECRET="+randString(t, alnumChars, 64)+"\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "add config")
	leaked := git(t, dir, "rev-parse", "HEAD")
	git(t, dir, "rm", "-q", "config.env")
	git(t, dir, "commit", "-q", "-m", "remove config")

	git(t, dir, "checkout", "-q", "-b", "experiment")
	writeFile(t, filepath.Join(dir, "bot", "okx.yaml"), "okx:\n  secret: "+strings.ToUpper(randHex(t, 32))+"\n")
	writeFile(t, filepath.Join(dir, "vendor", "lib.env"), "BINANCE_API_SECRET="+randString(t, alnumChars, 64)+"\n")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "try okx")
	branch := git(t, dir, "rev-parse", "HEAD")
	git(t, dir, "checkout", "-q", "main")
	writeFile(t, filepath.Join(dir, IgnoreFile), "vendor/\n")

	s := New(Options{})
	tree, err := s.Scan(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Findings) != 0 {
		t.Fatalf("work tree findings = %v, want none", rulesOf(tree.Findings))
	}
	r, err := s.ScanGit(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Source, Rule, Commit string }
	var got []row
	for _, f := range r.Findings {
		got = append(got, row{f.Source, f.Rule, f.Commit})
	}
	want := []row{
		{"bot/okx.yaml", "okx-api-secret", branch},
		{"config.env", "binance-api-secret", leaked},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history findings (-want +got):\n%s", diff)
	}
}

// TestGitStaged: the pre-commit scan sees what is staged, not the work
// tree.
func TestGitStaged(t *testing.T) {
	needGit(t)
	dir := t.TempDir()
	git(t, dir, "init", "-q")
	writeFile(t, filepath.Join(dir, "a.env"), "BINANCE_API_SECRET="+randString(t, alnumChars, 64)+"\n")
	writeFile(t, filepath.Join(dir, "b.env"), "nothing\n")
	git(t, dir, "add", "a.env", "b.env")
	// b.env gets a secret only in the work tree; a.env is fixed there.
	writeFile(t, filepath.Join(dir, "b.env"), "BINANCE_API_SECRET="+randString(t, alnumChars, 64)+"\n")
	writeFile(t, filepath.Join(dir, "a.env"), "BINANCE_API_SECRET=${FROM_VAULT}\n")
	s := New(Options{})
	r, err := s.ScanStaged(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]located{{"a.env", "binance-api-secret"}}, locations(r)); diff != "" {
		t.Errorf("staged findings (-want +got):\n%s", diff)
	}
}
