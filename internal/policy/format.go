package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// fmtNum formats a number the way a person writes it: 12000, 0.5, 1e-08.
func fmtNum(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// fmtPct formats a percentage with at most two decimals.
func fmtPct(f float64) string {
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
}

// fmtDur formats a duration compactly: 24h, 90m, 2h13m, 45s, 7d.
func fmtDur(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDur(-d)
	}
	if d >= time.Minute {
		d = d.Truncate(time.Minute)
	} else if d >= time.Second {
		d = d.Truncate(time.Second)
	}
	if d == 0 {
		return "0s"
	}
	const day = 24 * time.Hour
	var b strings.Builder
	if d >= 48*time.Hour && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	if h := d / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "h")
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "m")
		d -= m * time.Minute
	}
	if d >= time.Second {
		b.WriteString(strconv.FormatInt(int64(d/time.Second), 10) + "s")
	} else if d > 0 {
		b.WriteString(d.String())
	}
	return b.String()
}

// parseDur parses a Go duration ("90m", "24h") or a whole number of days
// ("7d"). It accepts only positive durations.
func parseDur(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && !strings.ContainsAny(n, "hmsµun.") {
		days, err := strconv.ParseInt(n, 10, 32)
		if err != nil || days <= 0 || days > 3650 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 90m, 24h or 7d)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

// units is an amount of quote currency in fixed point, 1e-8 per unit, so
// that caps and window sums add up exactly: 0.1*100000 is 10000, not
// 10000.000000000002, and ten orders of a tenth of a cap fit it exactly.
type units int64

const (
	unitScale = 1e8
	// maxUnits is the largest amount representable (about 92 billion);
	// larger amounts saturate to it, which is more than any cap allows.
	maxUnits = units(math.MaxInt64 / 2)
)

// toUnits converts a non-negative finite amount to units, rounding to the
// nearest unit and saturating at maxUnits.
func toUnits(f float64) units {
	if !(f > 0) { // also catches NaN
		return 0
	}
	x := math.Round(f * unitScale)
	if x >= float64(maxUnits) {
		return maxUnits
	}
	return units(x)
}

func (u units) String() string {
	return fmtNum(float64(u) / unitScale)
}
