package sim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

func TestBalancesAreSafeAndExact(t *testing.T) {
	k := NewKit()
	k.AddAccount(Account{Key: exchange.Credential{APIKey: "a"}, Balances: map[string]float64{"USDT": 100}})
	var wg sync.WaitGroup
	ok := make(chan bool, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok <- k.Debit("a", "USDT", 1)
		}()
	}
	wg.Wait()
	close(ok)
	n := 0
	for b := range ok {
		if b {
			n++
		}
	}
	if n != 100 || k.Balances("a")["USDT"] != 0 {
		t.Fatalf("%d debits succeeded, balance %v; want 100 and 0", n, k.Balances("a")["USDT"])
	}
	k.Credit("a", "BTC", 2)
	if got := k.Balances("a")["BTC"]; got != 2 {
		t.Errorf("BTC = %v, want 2", got)
	}
	if k.Debit("nobody", "USDT", 1) || k.Balances("nobody") != nil {
		t.Error("unknown account debited")
	}
}

func TestOrdersAndLog(t *testing.T) {
	k := NewKit()
	o := k.PlaceOrder(Order{APIKey: "a", Symbol: "BTCUSDT", ClientOrderID: "c1"})
	if _, ok := k.CancelOrder("b", o.ID, ""); ok {
		t.Error("another key cancelled the order")
	}
	if c, ok := k.CancelOrder("a", "", "c1"); !ok || c.Status != "CANCELED" {
		t.Errorf("cancel by client id = %+v %v", c, ok)
	}
	if _, ok := k.CancelOrder("a", o.ID, ""); ok {
		t.Error("cancelled twice")
	}
	k.Record(Logged{Method: "GET"})
	if len(k.Log()) != 1 {
		t.Error("log not recorded")
	}
	k.ResetLog()
	if len(k.Log()) != 0 {
		t.Error("log not reset")
	}
}

func TestFaults(t *testing.T) {
	k := NewKit()
	srv := httptest.NewServer(k.Faults(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })))
	defer srv.Close()
	k.Inject(Fault{Status: 429, RetryAfter: 2 * time.Second, Count: 1})
	k.Inject(Fault{Status: 502, Count: 1})
	tests := []struct {
		status     int
		retryAfter string
	}{{429, "2"}, {502, ""}, {200, ""}}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Retry-After") != tt.retryAfter {
			t.Errorf("status %d retry-after %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tt.status, tt.retryAfter)
		}
	}
	k.Inject(Fault{Truncate: true, Status: 200, Count: 1})
	resp, err := http.Get(srv.URL)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("truncated body read without error")
	}
}

func TestOrdersOldestFirst(t *testing.T) {
	k := NewKit()
	var want []string
	for i := 0; i < 50; i++ {
		want = append(want, k.PlaceOrder(Order{APIKey: "a"}).ID)
	}
	got := k.Orders("a")
	for i := range want {
		if got[i].ID != want[i] {
			t.Fatalf("Orders()[%d] = %s, want %s", i, got[i].ID, want[i])
		}
	}
}
