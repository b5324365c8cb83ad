// Package exchangetest holds test helpers shared by the exchange packages:
// ccxt (from npm) as an independent signer to cross-check our signers.
package exchangetest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// CCXTJob asks ccxt to sign one request with its clock frozen at NowMs.
// Path, API, Method and Params are ccxt's own sign() arguments; Params is
// usually a map[string]any, but any JSON value is passed on unchanged (OKX's
// batch endpoints take an array).
type CCXTJob struct {
	Exchange    string            `json:"exchange"`
	Credentials map[string]string `json:"credentials"`
	Options     map[string]any    `json:"options,omitempty"`
	Sandbox     bool              `json:"sandbox,omitempty"`
	NowMs       int64             `json:"nowMs"`
	Path        string            `json:"path"`
	API         any               `json:"api"`
	Method      string            `json:"method"`
	Params      any               `json:"params,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Body        string            `json:"body,omitempty"`
}

// CCXTResult is what ccxt's sign() returned.
type CCXTResult struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Body    *string           `json:"body"`
	Headers map[string]string `json:"headers"`
	Error   string            `json:"error"`
}

// CCXTDir is the directory holding the ccxt cross-check script and its
// node_modules.
func CCXTDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "ccxt")
}

// CCXT runs every job through ccxt in one node process. When ccxt is not
// installed the test is skipped, unless KEYWARDEN_REQUIRE_CCXT=1 (set by the
// project's test command, which installs it), in which case it fails.
func CCXT(t testing.TB, jobs []CCXTJob) []CCXTResult {
	t.Helper()
	dir := CCXTDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ccxt")); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("ccxt is not installed in %s (run: npm ci --prefix %s)", dir, dir)
		}
		t.Skipf("ccxt is not installed in %s; the project's test command installs it", dir)
	}
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "sign.js"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ccxt sign.js: %v: %s", err, stderr.String())
	}
	var res []CCXTResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ccxt sign.js output: %v: %s", err, out)
	}
	if len(res) != len(jobs) {
		t.Fatalf("ccxt returned %d results for %d jobs", len(res), len(jobs))
	}
	return res
}

// BotStep is one unified ccxt call for CCXTBot. Args starting with "$" are
// replaced by a value saved by an earlier step (Save, SaveField).
type BotStep struct {
	Op        string `json:"op"`
	Args      []any  `json:"args,omitempty"`
	Save      string `json:"save,omitempty"`
	SaveField string `json:"saveField,omitempty"`
}

// BotJob runs an unmodified ccxt exchange against rewritten base URLs.
// HostMap maps URL prefixes ccxt knows ("https://api.binance.com") to
// loopback ones ("http://127.0.0.1:PORT/binance"). Markets, when set, are
// installed with setMarkets so no market-data endpoint is needed.
type BotJob struct {
	Exchange string `json:"exchange"`
	// Module is the npm module to load ccxt from: empty for ccxt, or
	// "ccxt-bitmex" (ccxt 4.5.82, the last release with BitMEX).
	Module      string            `json:"module,omitempty"`
	Credentials map[string]string `json:"credentials"`
	Options     map[string]any    `json:"options,omitempty"`
	Sandbox     bool              `json:"sandbox,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	HostMap     map[string]string `json:"hostMap"`
	Markets     []map[string]any  `json:"markets,omitempty"`
	Currencies  map[string]any    `json:"currencies,omitempty"`
	Steps       []BotStep         `json:"steps"`
}

// BotResult is what one step did.
type BotResult struct {
	Op     string          `json:"op"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
}

// CCXTBot runs job through ccxt's bot.js and returns one result per step.
// Like CCXT it skips when ccxt is missing unless KEYWARDEN_REQUIRE_CCXT=1.
func CCXTBot(t testing.TB, job BotJob) []BotResult {
	t.Helper()
	dir := CCXTDir()
	module := job.Module
	if module == "" {
		module = "ccxt"
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", module)); err != nil {
		if os.Getenv("KEYWARDEN_REQUIRE_CCXT") == "1" {
			t.Fatalf("%s is not installed in %s (run: npm ci --prefix %s)", module, dir, dir)
		}
		t.Skipf("%s is not installed in %s; the project's test command installs it", module, dir)
	}
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "bot.js"))
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ccxt bot.js: %v: %s", err, stderr.String())
	}
	var res []BotResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ccxt bot.js output: %v: %s", err, out)
	}
	if len(res) != len(job.Steps) {
		t.Fatalf("ccxt bot ran %d of %d steps", len(res), len(job.Steps))
	}
	return res
}
