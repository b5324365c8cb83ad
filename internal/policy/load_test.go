package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodFile = `
[policy.spot-bot]
scopes = ["read", "trade"]
symbols = ["BTCUSDT", "ETH*"]
max_order_notional = 10000
notional_currency = "USDT"
price_band_pct = 5

[[policy.spot-bot.windows]]
duration = "24h"
max_notional = 100000

[[policy.spot-bot.trading_hours]]
days = ["mon", "tue"]
from = "09:00"
to = "17:00"
tz = "UTC"

[policy.treasury]
scopes = ["withdraw"]

[policy.treasury.withdraw]
cooldown = "24h"

[[policy.treasury.withdraw.addresses]]
asset = "USDT"
network = "ERC20"
address = "0x52908400098527886E0F7030069857D2E4169EE7"
max_amount = 5000
added_at = 2026-01-02T03:04:05Z
`

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policies.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	ps, err := LoadFile(writeFile(t, goodFile))
	if err != nil {
		t.Fatalf("LoadFile() error: %v", err)
	}
	if len(ps) != 2 {
		t.Fatalf("LoadFile() = %d policies, want 2", len(ps))
	}
	bot := ps["spot-bot"]
	if bot == nil || len(bot.windows) != 1 || bot.windows[0].dur != 24*time.Hour || len(bot.hours) != 1 || bot.band != 5 {
		t.Errorf("spot-bot = %+v, want the file's rules", bot)
	}
	tr := ps["treasury"]
	if tr == nil || len(tr.addresses) != 1 || !tr.addresses[0].addedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("treasury = %+v, want its address with added_at", tr)
	}
	if d := tr.Check(withdrawal("USDT", "ERC20", evmAddr, "", 100)); d != nil {
		t.Errorf("treasury.Check() = %v, want allowed", d)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"unknown key", "[policy.a]\nscopes = [\"read\"]\nmax_notionl = 5\n", []string{"line 3: unknown key policy.a.max_notionl"}},
		{"unknown key in array table", "[policy.a]\n[[policy.a.windows]]\nduration = \"1h\"\nmax_orders = 1\nmax_order = 2\n", []string{"line 5: unknown key policy.a.windows.max_order"}},
		{"unknown table", "[policy.a]\n\n[policy.a.limits]\nx = 1\ny = 2\n", []string{"line 3: unknown key policy.a.limits"}},
		{"unknown top level", "[policies.a]\nscopes = []\n", []string{"line 1: unknown key policies"}},
		{"dotted key", "[policy.a]\nwithdraw.cooldwn = \"1h\"\n", []string{"line 2: unknown key policy.a.withdraw.cooldwn"}},
		{"quoted table", "[policy.\"my bot\"]\nfoo = 1\n", []string{`line 2: unknown key policy."my bot".foo`}},
		{"syntax error", "[policy.a]\nscopes = [\n", []string{"line"}},
		{"type error", "[policy.a]\nmax_order_qty = \"ten\"\n", []string{"max_order_qty"}},
		{"no policies", "# nothing\n", []string{"no [policy.NAME] tables"}},
		{"compile error", "[policy.a]\nscopes = [\"root\"]\n", []string{`policy "a"`, "scopes[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFile(writeFile(t, tt.text))
			if err == nil {
				t.Fatalf("LoadFile() = nil error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadFile() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	if _, err := LoadFile(filepath.Join(t.TempDir(), "none.toml")); err == nil || !strings.HasPrefix(err.Error(), "load policies: ") {
		t.Errorf("LoadFile(missing) = %v, want a load policies error", err)
	}
}

// FuzzLoad feeds arbitrary text to the loader: it must return policies or
// an error, never panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte("[policy.a]\nscopes = [\"read\"]\nmax_notionl = 5\n"))
	f.Add([]byte("[policy.\"x.y\"]\nwithdraw.cooldown = \"1h\"\n[[policy.\"x.y\".windows]]\nduration = \"1d\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := Load(data)
		if err == nil && len(ps) == 0 {
			t.Errorf("Load() = no policies and no error")
		}
	})
}
