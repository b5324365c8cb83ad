package posture

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/vault"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func sampleReport() *Report {
	pol := DefaultPolicy()
	pol.EgressIPs = []string{"203.0.113.7"}
	trade := vault.KeyInfo{Exchange: "binance", Name: "main", Label: "spot bot", Kind: exchange.KeyHMAC, Fingerprint: "fp1",
		Scopes: []string{"read", "trade"}, Created: testNow.Add(-120 * day), Rotated: testNow.Add(-100 * day), LastUsed: testNow.Add(-time.Hour)}
	tp := &exchange.KeyPosture{CanRead: true, CanTrade: true, CanWithdraw: true, IPRestricted: false}
	ro := vault.KeyInfo{Exchange: "okx", Name: "<watch|er>", Kind: exchange.KeyHMAC, Fingerprint: "fp2",
		Scopes: []string{"read"}, Created: testNow.Add(-20 * day), Rotated: testNow.Add(-20 * day)}
	rp := &exchange.KeyPosture{CanRead: true, IPRestricted: true, IPs: []string{"203.0.113.7"}}
	gone := vault.KeyInfo{Exchange: "bybit", Name: "old", Kind: exchange.KeyHMAC, Fingerprint: "fp3", Scopes: []string{"read", "trade"},
		Created: testNow.Add(-200 * day), Rotated: testNow.Add(-200 * day)}
	tf := Evaluate(trade, *tp, pol, testNow)
	rf := Evaluate(ro, *rp, pol, testNow)
	Sort(tf)
	Sort(rf)
	r := &Report{
		Generated: testNow,
		Policy:    NewPolicyInfo(pol),
		Keys: []KeyEntry{
			{Key: trade, Status: "active", Posture: tp, Findings: tf},
			{Key: ro, Status: "active", Posture: rp, Findings: rf},
			{Key: gone, Status: "revoked"},
		},
		Rotations:   []Event{{Key: "binance/main", Time: testNow.Add(-100 * day), Kind: "rotated", Reason: "automated"}, {Key: "binance/main", Time: testNow.Add(-10 * day), Kind: "rotation-due"}},
		Revocations: []Event{{Key: "bybit/old", Time: testNow.Add(-3 * day), Kind: "revoked", Reason: "bot host compromised"}},
	}
	r.History = []Snapshot{{Time: testNow.Add(-7 * day), Counts: map[string]int{"high": 1}}, {Time: testNow, Counts: r.Counts()}}
	return r
}

func TestRenderGolden(t *testing.T) {
	for _, format := range []string{"md", "html", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := sampleReport().Render(&buf, format); err != nil {
				t.Fatalf("Render(%s) = %v", format, err)
			}
			golden := filepath.Join("testdata", "report."+format)
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update): %v", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("Render(%s) differs from %s (-want +got):\n%s", format, golden, diff)
			}
		})
	}
}

func TestRenderEscapes(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().Render(&buf, "html"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<watch|er>") || !strings.Contains(buf.String(), "&lt;watch|er&gt;") {
		t.Errorf("Render(html) does not escape key names:\n%s", buf.String())
	}
	buf.Reset()
	if err := sampleReport().Render(&buf, "md"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `<watch\|er>`) {
		t.Errorf("Render(md) does not escape table pipes:\n%s", buf.String())
	}
	if err := sampleReport().Render(&buf, "pdf"); err == nil {
		t.Errorf("Render(pdf) = nil error, want unknown format")
	}
}
