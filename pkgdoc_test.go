package keywarden_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs: every package has a doc comment, and the packages that
// decide what is signed or accepted say that changes need a second security
// review.
func TestPackageDocs(t *testing.T) {
	review := []string{"internal/vault", "internal/gateway", "internal/client"}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); name == "node_modules" || name == "testdata" || (strings.HasPrefix(name, ".") && path != ".") {
			return filepath.SkipDir
		}
		entries, _ := os.ReadDir(path)
		var files []string
		for _, e := range entries {
			n := e.Name()
			if strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				files = append(files, filepath.Join(path, n))
			}
		}
		if len(files) == 0 {
			return nil
		}
		doc := ""
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			if af.Doc != nil {
				doc += af.Doc.Text()
			}
		}
		if doc == "" {
			t.Errorf("package %s has no doc comment", path)
			return nil
		}
		needsReview := strings.HasPrefix(path, "internal/exchange/") && !strings.HasPrefix(path, "internal/exchange/sim") && !strings.HasPrefix(path, "internal/exchange/exchangetest")
		for _, r := range review {
			if path == r {
				needsReview = true
			}
		}
		if needsReview && !strings.Contains(strings.Join(strings.Fields(doc), " "), "second security review") {
			t.Errorf("package %s must say that changes need a second security review", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
