package main

import (
	"fmt"
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
)

// rotationVenue is the configured venue that rotates ex's keys: one that
// can inspect them, or Hyperliquid, which has no key self-inspection and
// whose agent rotation verifies a new agent itself (a signed noop and
// userRole, in internal/rotation).
func (a *app) rotationVenue(ex string) (exchange.Venue, error) {
	if ex != hyperliquid.Name {
		return a.venueFor(ex)
	}
	rs, err := routes(a.cfg.Venues)
	if err != nil {
		return exchange.Venue{}, err
	}
	for _, r := range rs {
		if r.Def.Exchange != ex {
			continue
		}
		u := r.Upstream
		if u == nil {
			if u, err = url.Parse(r.Def.Upstream); err != nil {
				return exchange.Venue{}, err
			}
		}
		return r.Def.Build(u), nil
	}
	return exchange.Venue{}, fmt.Errorf("no configured venue serves %s keys", ex)
}
