package main

import (
	"errors"
	"fmt"
	"time"
)

// gatewayLimits are the [gateway] request limits and idempotency window,
// with defaults applied.
type gatewayLimits struct {
	maxBody     int64
	maxHeader   int // the whole header section, as the operator sets it
	maxURI      int
	idempotency time.Duration // negative: off
}

// serverMaxHeaderBytes is http.Server.MaxHeaderBytes for the limit:
// net/http reads 4 KiB beyond MaxHeaderBytes before it answers 431.
func (l gatewayLimits) serverMaxHeaderBytes() int { return l.maxHeader - 4<<10 }

// limits reads and checks the limits.
func (g GatewayConfig) limits() (gatewayLimits, error) {
	l := gatewayLimits{maxBody: g.MaxBody, maxHeader: g.MaxHeaderBytes, maxURI: g.MaxURI, idempotency: 24 * time.Hour}
	if l.maxBody == 0 {
		l.maxBody = 64 << 10
	}
	if l.maxHeader == 0 {
		l.maxHeader = 16 << 10
	}
	if l.maxURI == 0 {
		l.maxURI = 8 << 10
	}
	var errs []error
	if l.maxBody < 1<<10 || l.maxBody > 16<<20 {
		errs = append(errs, fmt.Errorf("gateway max_body %d: want 1024 to 16777216 bytes", l.maxBody))
	}
	if l.maxHeader < 8<<10 || l.maxHeader > 1<<20 {
		errs = append(errs, fmt.Errorf("gateway max_header_bytes %d: want 8192 to 1048576 bytes", l.maxHeader))
	}
	if l.maxURI < 1<<10 || l.maxURI > 1<<20 {
		errs = append(errs, fmt.Errorf("gateway max_uri %d: want 1024 to 1048576 bytes", l.maxURI))
	}
	switch w := g.IdempotencyWindow; w {
	case "":
	case "off":
		l.idempotency = -1
	default:
		d, err := time.ParseDuration(w)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			errs = append(errs, fmt.Errorf("gateway idempotency_window %q: want a duration up to 168h, or \"off\"", w))
		}
		l.idempotency = d
	}
	return l, errors.Join(errs...)
}
