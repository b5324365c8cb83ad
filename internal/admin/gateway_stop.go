package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// gatewayStopOptions is the optional body of POST /v1/gateway/stop: what
// to do at the venues after the stop. keywarden serve acts on them from
// the audit record of the stop (its incident recorder), after the stop.
type gatewayStopOptions struct {
	CancelOrders bool   `json:"cancel_orders"`
	DeleteKeys   bool   `json:"delete_keys"`
	Reason       string `json:"reason"`
}

func handleGatewayStop(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Stopping is never held back by the audit log, nor by a bad body:
		// the panic switch must work when everything else is failing. It
		// is still recorded.
		s.Gateway.Stop()
		var opts gatewayStopOptions
		var bodyErr error
		if b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096)); err != nil {
			bodyErr = err
		} else if len(bytes.TrimSpace(b)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			bodyErr = dec.Decode(&opts)
		}
		detail := map[string]string{"source": remoteAddr(r)}
		if bodyErr == nil {
			if opts.CancelOrders {
				detail["cancel_orders"] = "true"
			}
			if opts.DeleteKeys {
				detail["delete_keys"] = "true"
			}
			if reason := strings.TrimSpace(opts.Reason); reason != "" {
				detail["reason"] = reason[:min(len(reason), 500)]
			}
		}
		aerr := s.event(r.Context(), "gateway.stop", from(r).p.Name, detail)
		out := map[string]string{"status": "stopped"}
		switch {
		case bodyErr != nil:
			out["venue_actions"] = "not started: the body is not valid JSON of cancel_orders, delete_keys and reason"
		case aerr != nil && (opts.CancelOrders || opts.DeleteKeys):
			out["venue_actions"] = "not started: the stop could not be audited"
		case opts.CancelOrders || opts.DeleteKeys:
			out["venue_actions"] = "requested: their results go to the audit log and the incident"
		}
		writeJSON(w, http.StatusOK, out)
	})
}
