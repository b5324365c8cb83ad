package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the keywarden command inside the
// scripts in testdata/script.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"keywarden": main})
}

// TestScripts runs the CLI scripts in testdata/script: each is a whole
// operator session, checked line by line.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("KEYWARDEN_CONFIG", e.WorkDir+"/keywarden.toml")
			e.Setenv("HOME", e.WorkDir)
			return os.Chmod(e.WorkDir+"/pass", 0o600)
		},
	})
}
