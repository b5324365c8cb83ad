package venues

import (
	"net/url"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestKnownVenuesAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Known() {
		if seen[d.Name] {
			t.Errorf("venue %s listed twice", d.Name)
		}
		seen[d.Name] = true
		for _, raw := range []string{d.Upstream, d.Testnet} {
			if raw == "" {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				t.Errorf("%s: upstream %q is not an https URL", d.Name, raw)
			}
		}
		u, _ := url.Parse(d.Upstream)
		v := d.Build(u)
		if v.Name != d.Name {
			t.Errorf("Build for %s names the venue %q", d.Name, v.Name)
		}
		if v.Signer == nil || v.Verifier == nil || v.Describer == nil || v.Errors == nil {
			t.Errorf("%s: venue lacks a signer, verifier, describer or error writer", d.Name)
		}
		if v.Upstream.String() != u.String() {
			t.Errorf("%s: upstream %s, want %s", d.Name, v.Upstream, u)
		}
		if d.Simulator(sim.NewKit()) == nil {
			t.Errorf("%s: no simulator", d.Name)
		}
		if _, err := ByName(d.Name); err != nil {
			t.Errorf("ByName(%s): %v", d.Name, err)
		}
	}
	if len(seen) != 13 {
		t.Errorf("%d venues, want 13", len(seen))
	}
	if _, err := ByName("nope"); err == nil {
		t.Error("ByName(nope) = nil error")
	}
}
