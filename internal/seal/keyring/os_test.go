//go:build keyring && !darwin

package keyring

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSecretTool puts a secret-tool on PATH that keeps entries in files
// under dir, as the real one keeps them in the Secret Service: store reads
// the secret from stdin, lookup prints it without a newline and exits 1
// when there is none. It also records its arguments.
func fakeSecretTool(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
dir="` + dir + `"
echo "$@" >> "$dir/argv"
case "$1" in
store)
  shift 3 # --label LABEL
  key=$(echo "$@" | tr ' /' '__')
  cat > "$dir/entry-$key"
  ;;
lookup)
  shift
  key=$(echo "$@" | tr ' /' '__')
  [ -f "$dir/entry-$key" ] || exit 1
  cat "$dir/entry-$key"
  ;;
*) exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "secret-tool"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func TestSetGet(t *testing.T) {
	dir := fakeSecretTool(t)
	ctx := context.Background()
	if _, err := Get(ctx, "/srv/kw"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Set = %v, want ErrNotFound", err)
	}
	secret := []byte("correct horse battery staple")
	if err := Set(ctx, "/srv/kw", secret); err != nil {
		t.Fatalf("Set() = %v", err)
	}
	got, err := Get(ctx, "/srv/kw")
	if err != nil || string(got) != string(secret) {
		t.Fatalf("Get() = %q, %v", got, err)
	}
	if _, err := Get(ctx, "/srv/other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(other account) = %v, want ErrNotFound", err)
	}
	argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
	if strings.Contains(string(argv), "horse") {
		t.Errorf("the secret reached secret-tool's arguments:\n%s", argv)
	}
}

func TestMissingTool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Get(context.Background(), "/srv/kw")
	if err == nil || !strings.Contains(err.Error(), "libsecret-tools") {
		t.Errorf("Get without secret-tool = %v", err)
	}
}
