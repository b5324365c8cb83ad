package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunIsBoundedByCount(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Query().Get("fail") == "1" {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{
		Conns: 4, MaxRequests: 200, Duration: 10 * time.Second, Warmup: 2,
		Build: func(c, i int) (*http.Request, error) {
			q := ""
			if i == 5 && c == 0 {
				q = "?fail=1"
			}
			return http.NewRequest("GET", srv.URL+q, nil)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 {
		t.Errorf("measured %d requests, want 200", res.Requests)
	}
	if got := hits.Load(); got != 200+4*2 {
		t.Errorf("server saw %d requests, want 208 (200 + warm-up)", got)
	}
	if res.Non2xx != 1 || res.FirstError != "status 500" {
		t.Errorf("non2xx = %d first error %q, want 1 and status 500", res.Non2xx, res.FirstError)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.RPS <= 0 {
		t.Errorf("bad stats %+v", res)
	}
}

func TestRunIsBoundedByTime(t *testing.T) {
	// The server never answers: only the duration bound can end the run.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	res, err := Run(context.Background(), Options{
		Conns: 2, MaxRequests: 1 << 30, Duration: 100 * time.Millisecond,
		Build: func(c, i int) (*http.Request, error) { return http.NewRequest("GET", srv.URL, nil) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.Errors != 0 {
		t.Errorf("result = %+v, want no measured requests and no errors (cut by the deadline)", res)
	}
}

func TestReadProc(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 {
		t.Errorf("RSS = %d, want > 0", s.RSS)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestOnStartSeesOnlyWarmup(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer srv.Close()
	var atStart int64 = -1
	res, err := Run(context.Background(), Options{
		Conns: 3, MaxRequests: 30, Duration: 10 * time.Second, Warmup: 5,
		Build:   func(c, i int) (*http.Request, error) { return http.NewRequest("GET", srv.URL, nil) },
		OnStart: func() { atStart = hits.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if atStart != 15 {
		t.Errorf("OnStart saw %d requests, want 15 (the warm-up only)", atStart)
	}
	if res.Requests != 30 {
		t.Errorf("measured %d requests, want 30", res.Requests)
	}
}

func TestRateSpacesRequests(t *testing.T) {
	// 20 requests at 200/s cannot finish before 19/200 s = 95 ms: the last
	// one is not due earlier. The bound is on the pacing, not on speed.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{
		Conns: 4, MaxRequests: 20, Duration: 10 * time.Second, Rate: 200,
		Build: func(c, i int) (*http.Request, error) { return http.NewRequest("GET", srv.URL, nil) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 20 {
		t.Errorf("measured %d requests, want 20", res.Requests)
	}
	if min := 95 * time.Millisecond; res.Elapsed < min {
		t.Errorf("Elapsed = %v with Rate 200 for 20 requests, want >= %v", res.Elapsed, min)
	}
}
