package gateway

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// tickerReader reads "GET /ticker?symbol=X" answered with the price as text.
type tickerReader struct{}

func (tickerReader) TickerRequest(symbol string) *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: "/ticker", RawQuery: "symbol=" + symbol, Header: http.Header{}}
}

func (tickerReader) ParsePrice(symbol string, status int, body []byte) (float64, error) {
	if status != http.StatusOK {
		return 0, errors.New("ticker: status " + strconv.Itoa(status))
	}
	return strconv.ParseFloat(string(body), 64)
}

// TestLastPriceFailureStands: a failed ticker fetch is not tried again for
// priceRetryAfter, so calls meanwhile do not each wait for a failing venue;
// after that the ticker is asked again, and a price, once had, is cached.
func TestLastPriceFailureStands(t *testing.T) {
	var fetches atomic.Int64
	var up atomic.Bool // the ticker answers
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if !up.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("42.5"))
	}))
	defer srv.Close()
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	v := newTestVenue(srv.URL)
	v.Prices = tickerReader{}
	gw, err := New(Options{Routes: []Route{{Venue: v}}, Clients: &fakeClients{}, Keys: fakeKeys{},
		Policy: &fakePolicy{}, Audit: &fakeAudit{}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		advance time.Duration
		up      bool
		wantOK  bool
		fetches int64 // cumulative
	}{
		{"first call, ticker failing", 0, false, false, 1},
		{"again at once: the failure stands", 0, false, false, 1},
		{"just before the retry time", priceRetryAfter - time.Millisecond, false, false, 1},
		{"after the retry time: asked again", 2 * time.Millisecond, false, false, 2},
		{"ticker back, failure still standing", 0, true, false, 2},
		{"after the retry time: price", priceRetryAfter, true, true, 3},
		{"cached", 0, true, true, 3},
	}
	for _, s := range steps {
		advance(s.advance)
		up.Store(s.up)
		p, ok := gw.LastPrice("tv", "BTCUSDT")
		if ok != s.wantOK || (ok && p != 42.5) {
			t.Errorf("%s: LastPrice = %v, %v, want ok %v (42.5)", s.name, p, ok, s.wantOK)
		}
		if n := fetches.Load(); n != s.fetches {
			t.Errorf("%s: %d ticker fetches, want %d", s.name, n, s.fetches)
		}
	}
	// Another symbol's failure is its own.
	if _, ok := gw.LastPrice("tv", "ETHUSDT"); !ok {
		t.Errorf("ETHUSDT: no price, want one (the ticker answers)")
	}
}
