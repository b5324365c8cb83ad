package admin

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGatewayStopVenueOptions: the stop's optional body asks for venue
// actions, recorded in the stop's audit event; a bad body still stops.
func TestGatewayStopVenueOptions(t *testing.T) {
	tests := []struct {
		name       string
		body       any
		wantDetail map[string]string
		wantVenue  string
	}{
		{"no body", nil, map[string]string{}, ""},
		{"cancel and delete", map[string]any{"cancel_orders": true, "delete_keys": true, "reason": "leak"},
			map[string]string{"cancel_orders": "true", "delete_keys": "true", "reason": "leak"}, "requested: their results go to the audit log and the incident"},
		{"cancel only", map[string]any{"cancel_orders": true}, map[string]string{"cancel_orders": "true"}, "requested: their results go to the audit log and the incident"},
		{"unknown field", map[string]any{"cancel_everything": true}, map[string]string{},
			"not started: the body is not valid JSON of cancel_orders, delete_keys and reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tok := e.login("admin")
			r := e.do("POST", "/v1/gateway/stop", tok, tt.body)
			if r.status != http.StatusOK || r.body["status"] != "stopped" {
				t.Fatalf("stop = %d %s", r.status, r.raw)
			}
			if got, _ := r.body["venue_actions"].(string); got != tt.wantVenue {
				t.Errorf("venue_actions = %q, want %q", got, tt.wantVenue)
			}
			if err := e.srv.Gateway.Healthy(); err == nil {
				t.Error("the gateway still runs after the stop")
			}
			evs := e.events("admin.gateway.stop")
			if len(evs) != 1 {
				t.Fatalf("%d stop events, want 1", len(evs))
			}
			got := map[string]string{}
			for k, v := range evs[0].Detail {
				if k != "source" {
					got[k] = v
				}
			}
			if d := cmp.Diff(tt.wantDetail, got); d != "" {
				t.Errorf("stop event detail (-want +got):\n%s", d)
			}
		})
	}
}
