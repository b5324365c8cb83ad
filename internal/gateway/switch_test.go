package gateway

import "testing"

// Resume runs the OnResume hooks after the switch moved, as Stop runs the
// OnStop hooks; Stopped reports the switch.
func TestSwitchHooks(t *testing.T) {
	h := newHarness(t, nil)
	var seen []bool
	h.gw.OnStop(func() { seen = append(seen, h.gw.Stopped()) })
	h.gw.OnResume(func() { seen = append(seen, h.gw.Stopped()) })
	if h.gw.Stopped() {
		t.Fatal("a new gateway is stopped")
	}
	h.gw.Stop()
	h.gw.Resume()
	h.gw.Stop()
	if want := []bool{true, false, true}; len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Errorf("hooks saw the switch as %v, want %v", seen, want)
	}
	if h.gw.Healthy() == nil {
		t.Error("Healthy() = nil with the switch on")
	}
}
