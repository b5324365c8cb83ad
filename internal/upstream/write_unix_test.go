//go:build linux || darwin || freebsd || netbsd || openbsd

package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitEndsOnCancel: a request whose answer is slow waits for it inside
// writeRequest; cancelling the context ends that wait with the context's
// error, not the header timeout.
func TestWaitEndsOnCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte("late"))
	}))
	defer srv.Close()
	defer close(release)
	c := New(Options{ResponseHeaderTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/v3/order", strings.NewReader("quantity=1"))
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := c.RoundTrip(req)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(8 * time.Second):
		// The venue answers after 10 s and the header timeout is a
		// minute: only the cancellation can end the wait before this.
		t.Fatal("cancelling the context did not end the wait for the answer")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting for the answer: err = %v, want context.Canceled", err)
	}
	if errors.Is(err, ErrConnLost) {
		t.Errorf("a cancelled request is reported as a lost connection: %v", err)
	}
}

// TestWaitAndImmediateAnswers: answers that arrive as soon as the request
// is written are never missed by the wait (each request would otherwise
// run into its deadline).
func TestWaitAndImmediateAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := New(Options{MaxConnsPerHost: 1})
	stop := time.Now().Add(3 * time.Second)
	n := 0
	for ; n < 2000 && time.Now().Before(stop); n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/v3/order", strings.NewReader("n="+strconv.Itoa(n)))
		resp, err := c.RoundTrip(req)
		if err != nil {
			cancel()
			t.Fatalf("request %d: %v", n, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if err != nil || string(b) != "ok" {
			t.Fatalf("request %d: %q, %v", n, b, err)
		}
	}
	if n < 10 {
		t.Fatalf("only %d requests in 3 s", n)
	}
}

// TestLargeRequestBody: a request larger than the socket buffer is written
// partly inside the wait and finished with ordinary writes.
func TestLargeRequestBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write([]byte(strconv.Itoa(len(b)) + " " + string(b[len(b)-3:])))
	}))
	defer srv.Close()
	c := New(Options{})
	body := strings.Repeat("a", 4<<20) + "end"
	for i := 0; i < 1; i++ {
		status, got, err := get(t, c, "POST", srv.URL+"/big", body)
		if err != nil {
			t.Fatal(err)
		}
		if want := strconv.Itoa(len(body)) + " end"; status != 200 || got != want {
			t.Errorf("large body: %d %q, want 200 %q", status, got, want)
		}
	}
}

// TestReuseAfterDeadlinePassed: a pooled connection keeps the last
// request's deadline; once it has passed, the idle check still finds the
// connection alive and reuses it.
func TestReuseAfterDeadlinePassed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var dials atomic.Int64
	c := New(Options{CheckIdleAfter: time.Millisecond, Dial: countingDial(&dials)})
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/a", nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			cancel()
			t.Fatalf("request %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		// Past the request's deadline and the idle check's threshold.
		time.Sleep(250 * time.Millisecond)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1 (the idle connection is reused after its deadline passed)", n)
	}
}
