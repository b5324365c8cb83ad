package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/vault"
)

const crashChildEnv = "KEYWARDEN_TEST_CRASH_CONFIG"

// crashChild is the child process of TestKeyAddCrash: it unseals once, says
// "ready", then adds keys through the key add code path until it is killed.
func crashChild(config string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	cfg, err := loadConfig(config, func(string) string { return "" })
	if err != nil {
		fail(err)
	}
	log := slog.New(slog.DiscardHandler)
	v, db, err := openVault(ctx, &cfg, log)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	if err := unsealFromConfig(ctx, v, &cfg, newPrompter(strings.NewReader(""), io.Discard)); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	tag := make([]byte, 4)
	rand.Read(tag)
	for i := range 100000 {
		name := fmt.Sprintf("k%x-%d", tag, i)
		m, err := parseMaterial([]byte("api_key=API-" + name + "\nsecret=secret-" + marker + "-" + name + "\n"))
		if err != nil {
			fail(err)
		}
		if _, err := addKey(ctx, v, &keyAddFlags{exchange: "binance", name: name}, m); err != nil {
			fail(err)
		}
		m.zero()
		fmt.Println("added", name)
	}
	os.Exit(0)
}

// TestKeyAddCrash kills a process adding keys with SIGKILL at random moments
// and checks, after each kill, that the database opens and passes its
// integrity check and that every key is either complete and opens, or
// absent.
func TestKeyAddCrash(t *testing.T) {
	if cfg := os.Getenv(crashChildEnv); cfg != "" {
		crashChild(cfg)
		return
	}
	if testing.Short() {
		t.Skip("crash test starts 20 processes")
	}
	c := newCLI(t)
	c.ok("", "operator", "init")
	const iterations = 20
	added := 0
	for i := range iterations {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKeyAddCrash$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+c.config)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("iteration %d: child did not get ready: %q %s", i, lines.Text(), stderr.String())
		}
		n, _ := rand.Int(rand.Reader, big.NewInt(60))
		time.Sleep(time.Duration(n.Int64()+1) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "added ") {
				added++
			}
		}
		cmd.Wait()
		if strings.Contains(stderr.String(), "crash child:") {
			t.Fatalf("iteration %d: child failed: %s", i, stderr.String())
		}
		checkConsistent(t, c, i)
	}
	if added == 0 {
		t.Fatal("no key was added before any kill; the test proved nothing")
	}
	t.Logf("%d keys added across %d kills", added, iterations)
	c.checkNoMarker()
}

func checkConsistent(t *testing.T, c *cli, iteration int) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Options{Dir: filepath.Join(c.dir, "data")})
	if err != nil {
		t.Fatalf("iteration %d: open after kill = %v", iteration, err)
	}
	defer db.Close()
	if err := db.QuickCheck(ctx); err != nil {
		t.Fatalf("iteration %d: quick_check after kill = %v", iteration, err)
	}
	v, err := vault.New(vault.Options{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Seal()
	pass, err := readPassphraseFile(filepath.Join(c.dir, "pass"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Unseal(ctx, pass); err != nil {
		t.Fatalf("iteration %d: unseal after kill = %v", iteration, err)
	}
	problems, err := v.Verify(ctx)
	if err != nil || len(problems) > 0 {
		t.Fatalf("iteration %d: Verify() after kill = %v, %v, want a consistent inventory", iteration, problems, err)
	}
	keys, err := v.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		cred, err := v.Credential(ctx, k.Exchange, k.Name)
		if err != nil || cred.APIKey != "API-"+k.Name || !strings.HasSuffix(string(cred.Secret), k.Name) {
			t.Fatalf("iteration %d: key %s does not open to its own secret: %v", iteration, k.ID(), err)
		}
	}
}
