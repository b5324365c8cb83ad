package bybit

import "testing"

// TestWSSignatureVector is spec §7 vector Y3 (cross-checked with Python):
// key "bybit-test-secret", "GET/realtime1662350400000".
func TestWSSignatureVector(t *testing.T) {
	got := WSSignature([]byte("bybit-test-secret"), 1662350400000)
	if want := "e5afa359fdaabfeeae6a8755687997f43c4696196a957502edf608dcd3c83caa"; got != want {
		t.Errorf("WSSignature = %s, want %s", got, want)
	}
}
