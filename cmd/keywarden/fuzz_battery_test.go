package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePrefixes (spec/security.md Z11): the CIDR allowlists of
// trusted proxies never panic on input, and every prefix accepted is valid
// and masked, so Contains means what the operator wrote. IPv4-mapped IPv6,
// zones, leading zeros and bare addresses are the seeds.
func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.0.1", "::ffff:10.0.0.1", "::ffff:10.0.0.0/104", "fe80::1%eth0",
		"fe80::/10", "010.0.0.1", "10.0.0.1/33", "0.0.0.0/0", "::/0", "1.2.3.4/24", "", "10.0.0.0/8 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parsePrefixes([]string{s})
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() {
				t.Fatalf("parsePrefixes(%q) accepted an invalid prefix %v", s, p)
			}
			if p != p.Masked() {
				t.Fatalf("parsePrefixes(%q) = %v, not masked", s, p)
			}
			if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" && !p.Contains(a) {
				t.Fatalf("parsePrefixes(%q) = %v does not contain the address itself", s, p)
			}
		}
	})
}

// FuzzConfig (spec/security.md Z13): any configuration file is either
// refused with an error or loaded; it never panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"data_dir = \"data\"\n[vault]\npassphrase_file = \"pass\"\n",
		"[gateway]\nlisten = \"127.0.0.1:8443\"\nplaintext = true\n[[venue]]\nname = \"binance\"\n",
		"[policy.trader]\nscopes = [\"read\", \"trade\"]\nmax_order_notional = 1e309\n",
		"unknown_key = 1\n", "[gateway]\ntrusted_proxies = [\"::ffff:10.0.0.0/104\", \"fe80::1%eth0\"]\n",
		"data_dir = \"\\u0000\"\n", "[[venue]]\n[[venue]]\n", "= =\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(dir, "keywarden.toml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(p, func(string) string { return "" })
		if err != nil {
			return
		}
		_ = validateGateway(&cfg)
	})
}
