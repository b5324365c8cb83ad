package main

import (
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/metrics"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/vault"
)

// serveMetrics are the metrics of a running serve. They exist before the
// server (the audit log reports commits while it starts) and read the
// gateway's state once bind has named it.
type serveMetrics struct {
	*metrics.Metrics
	gw atomic.Pointer[gateway.Gateway]
}

func newServeMetrics(v *vault.Vault) *serveMetrics {
	s := &serveMetrics{}
	s.Metrics = metrics.New(metrics.Options{
		Sealed: v.Sealed,
		Healthy: func() error {
			if g := s.gw.Load(); g != nil {
				return g.Healthy()
			}
			return errors.New("starting")
		},
		RateLimits: func() map[string]exchange.RateLimit {
			if g := s.gw.Load(); g != nil {
				return g.RateLimits()
			}
			return nil
		},
		ReplayFull: func() uint64 {
			if g := s.gw.Load(); g != nil {
				return g.ReplayFull()
			}
			return 0
		},
	})
	return s
}

// bind points the scrape-time gauges at srv's gateway and offers the
// metrics to the admin listener.
func (s *serveMetrics) bind(srv *server.Server) {
	s.gw.Store(srv.Gateway)
	srv.Metrics = s.Handler()
}

// observeWith returns a gateway observer feeding the metrics and then next
// (the monitor).
func (s *serveMetrics) observeWith(next func(gateway.Observation)) func(gateway.Observation) {
	return func(o gateway.Observation) {
		s.Observe(o)
		next(o)
	}
}

// withMetrics serves GET /metrics from m and everything else from h: the
// admin listener's handler. The exposition carries counts, latencies and
// names (venues, scopes, rules, exchange key names), never secrets; the
// admin listener is loopback by default.
func withMetrics(h, m http.Handler) http.Handler {
	if m == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m)
	mux.Handle("/", h)
	return mux
}
