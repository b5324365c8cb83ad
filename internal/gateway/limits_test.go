package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConfiguredLimits: MaxURI and MaxBody refuse longer request targets
// (414) and bodies (413) in the venue's shape, with nothing forwarded;
// requests at the limits pass.
func TestConfiguredLimits(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxURI = 120; o.MaxBody = 40 })
	const order = "/tv/order?symbol=BTCUSDT&side=buy&qty=1&price=100"
	tests := []struct {
		name   string
		target string
		body   string
		status int
	}{
		{"target at the limit", order + "&pad=" + strings.Repeat("a", 120-len(order)-5), "", http.StatusOK},
		{"target over the limit", order + "&pad=" + strings.Repeat("a", 121-len(order)-5), "", http.StatusRequestURITooLong},
		{"body at the limit", order, strings.Repeat("b", 40), http.StatusOK},
		{"body over the limit", order, strings.Repeat("b", 41), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.up.count()
			w := h.do(signed("POST", tt.target, tt.body, clientSecret, time.Now()))
			if w.Code != tt.status {
				t.Fatalf("status = %d %s, want %d", w.Code, w.Body, tt.status)
			}
			forwarded := h.up.count() - before
			if want := map[bool]int{true: 1, false: 0}[tt.status == http.StatusOK]; forwarded != want {
				t.Errorf("forwarded %d, want %d", forwarded, want)
			}
			if tt.status != http.StatusOK && !strings.Contains(w.Body.String(), `"msg"`) {
				t.Errorf("body %s is not in the venue's error shape", w.Body)
			}
		})
	}
}
