// Package loadgen is keywarden's closed-loop HTTP load generator and process
// meter, used by `keywarden bench` to compare paths side by side in one run.
// Every run is bounded by a request count and a duration, and targets only
// the addresses it is given (loopback in practice).
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Builder makes the i-th request of connection conn. It must be safe for
// concurrent use by different connections.
type Builder func(conn, i int) (*http.Request, error)

// Options bound one run.
type Options struct {
	Conns       int
	MaxRequests int           // total, across connections
	Duration    time.Duration // stop after this long
	Warmup      int           // requests per connection before measuring
	Build       Builder
	// Transport defaults to one keep-alive connection per worker.
	Transport http.RoundTripper
	// Rate, when positive, paces the measured phase to at most this many
	// requests per second across all connections (the n-th request starts
	// no earlier than n/Rate seconds in). Zero runs closed-loop flat out.
	// Latency is timed from each request's actual start.
	Rate float64
	// OnStart, when set, is called once after the warm-up, just before the
	// measured phase, so a caller can sample counters (CPU, connections)
	// over exactly the measured requests.
	OnStart func()
}

// Result summarizes one run.
type Result struct {
	Requests int
	Errors   int
	Non2xx   int
	Elapsed  time.Duration
	P50, P99 time.Duration
	RPS      float64
	// FirstError describes the first failure, for diagnosis.
	FirstError string
}

// Run drives load until MaxRequests or Duration, whichever comes first.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Conns <= 0 || o.MaxRequests <= 0 || o.Duration <= 0 || o.Build == nil {
		return Result{}, errors.New("loadgen: conns, max requests, duration and a builder are required")
	}
	tr := o.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: o.Conns,
			MaxConnsPerHost:     o.Conns,
			DisableCompression:  true,
			TLSHandshakeTimeout: 5 * time.Second,
		}
		if t, ok := tr.(*http.Transport); ok {
			defer t.CloseIdleConnections()
		}
	}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	var firstErr atomic.Pointer[string]
	do := func(req *http.Request) (int, error) {
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, err
	}
	// Warm-up, not measured.
	var wg sync.WaitGroup
	for c := 0; c < o.Conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < o.Warmup; i++ {
				req, err := o.Build(c, -1-i)
				if err != nil {
					return
				}
				_, _ = do(req.WithContext(ctx))
			}
		}(c)
	}
	wg.Wait()

	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var issued atomic.Int64
	lat := make([][]time.Duration, o.Conns)
	var errs, non2xx atomic.Int64
	if o.OnStart != nil {
		o.OnStart()
	}
	start := time.Now()
	for c := 0; c < o.Conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			mine := make([]time.Duration, 0, min(o.MaxRequests/o.Conns+1, 1<<16))
			for i := 0; ; i++ {
				n := issued.Add(1)
				if runCtx.Err() != nil || n > int64(o.MaxRequests) {
					break
				}
				if o.Rate > 0 && !pace(runCtx, start, n-1, o.Rate) {
					break
				}
				req, err := o.Build(c, i)
				if err != nil {
					errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				t0 := time.Now()
				code, err := do(req.WithContext(runCtx))
				d := time.Since(t0)
				if err != nil {
					if runCtx.Err() != nil {
						break
					}
					errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				if code < 200 || code > 299 {
					non2xx.Add(1)
					msg := "status " + strconv.Itoa(code)
					firstErr.CompareAndSwap(nil, &msg)
				}
				mine = append(mine, d)
			}
			lat[c] = mine
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := Result{Requests: len(all), Errors: int(errs.Load()), Non2xx: int(non2xx.Load()), Elapsed: elapsed}
	if len(all) > 0 {
		r.P50 = all[len(all)*50/100]
		r.P99 = all[min(len(all)-1, len(all)*99/100)]
		r.RPS = float64(len(all)) / elapsed.Seconds()
	}
	if p := firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	return r, nil
}

// pace waits until the n-th request (from 0) is due at rate per second
// after start. It returns false when ctx ends first.
func pace(ctx context.Context, start time.Time, n int64, rate float64) bool {
	d := time.Until(start.Add(time.Duration(float64(n) / rate * float64(time.Second))))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ProcStat is a process's CPU time and resident memory.
type ProcStat struct {
	CPU time.Duration
	RSS int64 // bytes
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// ReadProc reads pid's CPU time (user+system) and RSS from /proc.
func ReadProc(pid int) (ProcStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	// Fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("loadgen: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return ProcStat{}, fmt.Errorf("loadgen: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	return ProcStat{
		CPU: time.Duration(ut+st) * time.Second / clockTicks,
		RSS: rssPages * int64(os.Getpagesize()),
	}, nil
}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
