// Package sim holds what every exchange simulator shares: accounts with
// permissions and balances, a small order book, a log of every request
// received (the test oracle), and scripted faults (5xx, 429 with
// Retry-After, slow or truncated bodies, hangs).
//
// Simulators run on loopback only, in tests and in `keywarden simulate`.
// They verify signatures exactly as their venue does; they never contact a
// real exchange. A Kit is safe for concurrent use.
package sim

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Account is one API key at a simulated venue.
type Account struct {
	Key exchange.Credential
	// Permissions are the venue's permission names granted to the key
	// ("read", "trade", "withdraw", ... in the simulator's own terms).
	Permissions map[string]bool
	// IPs restricts the source address when non-empty.
	IPs      []string
	Balances map[string]float64
	Created  time.Time
}

// Allowed says whether the account has permission p.
func (a *Account) Allowed(p string) bool { return a.Permissions[p] }

// IPAllowed says whether remoteAddr (host:port) may use the account.
func (a *Account) IPAllowed(remoteAddr string) bool {
	if len(a.IPs) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	for _, ip := range a.IPs {
		if ip == host {
			return true
		}
	}
	return false
}

// Order is an order resting in or filled by the simulator.
type Order struct {
	ID            string
	ClientOrderID string
	APIKey        string
	Symbol        string
	Side          string
	Type          string
	Quantity      float64
	Price         float64
	Status        string // NEW, FILLED, CANCELED
	Created       time.Time
}

// Logged is one request the simulator received, after authentication.
type Logged struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	APIKey                 string // the key that signed it, "" if public or rejected
	Verified               bool
	Error                  string // why it was rejected, if it was
}

// Fault is a scripted failure, applied to the next Count requests (Count 0
// means every request until cleared).
type Fault struct {
	Status     int           // answer with this status (500, 502, 429, 418, ...)
	RetryAfter time.Duration // Retry-After header on 429/418
	Delay      time.Duration // wait this long before answering
	Hang       bool          // never answer until the client gives up
	Truncate   bool          // promise a longer body than sent, then close
	Body       string
	Count      int
}

// Kit is the state shared by one simulator instance.
type Kit struct {
	// Now is the simulator's clock; tests may replace it before serving.
	Now func() time.Time

	mu       sync.Mutex
	accounts map[string]*Account
	orders   map[string]*Order
	nextID   int64
	log      []Logged
	faults   []Fault
	prices   map[string]float64
}

// NewKit returns an empty Kit on the real clock.
func NewKit() *Kit {
	return &Kit{
		Now:      time.Now,
		accounts: map[string]*Account{},
		orders:   map[string]*Order{},
		prices:   map[string]float64{},
		nextID:   1000,
	}
}

// AddAccount registers an API key. Balances default to 10 BTC and 100000 of
// USDT, USD and USDC when a is given none.
func (k *Kit) AddAccount(a Account) *Account {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a.Balances == nil {
		a.Balances = map[string]float64{"BTC": 10, "ETH": 100, "USDT": 100000, "USD": 100000, "USDC": 100000}
	}
	if a.Created.IsZero() {
		a.Created = k.Now()
	}
	acc := a
	k.accounts[a.Key.APIKey] = &acc
	return &acc
}

// RemoveAccount deletes the API key apiKey, as a venue deletes a key: the
// key is refused from then on. It reports whether the key existed.
func (k *Kit) RemoveAccount(apiKey string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.accounts[apiKey]
	delete(k.accounts, apiKey)
	return ok
}

// Account returns the account whose API key is apiKey.
func (k *Kit) Account(apiKey string) (*Account, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.accounts[apiKey]
	return a, ok
}

// Balances returns a copy of apiKey's balances.
func (k *Kit) Balances(apiKey string) map[string]float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.accounts[apiKey]
	if !ok {
		return nil
	}
	out := make(map[string]float64, len(a.Balances))
	for c, v := range a.Balances {
		out[c] = v
	}
	return out
}

// Debit takes amount of asset from apiKey's balance; it reports false, and
// changes nothing, when the balance is short.
func (k *Kit) Debit(apiKey, asset string, amount float64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.accounts[apiKey]
	if !ok || amount < 0 || a.Balances[asset] < amount {
		return false
	}
	a.Balances[asset] -= amount
	return true
}

// Credit adds amount of asset to apiKey's balance.
func (k *Kit) Credit(apiKey, asset string, amount float64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.accounts[apiKey]; ok && amount > 0 {
		a.Balances[asset] += amount
	}
}

// SetPrice sets the last traded price of symbol.
func (k *Kit) SetPrice(symbol string, price float64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.prices[symbol] = price
}

// Price returns the last traded price of symbol (100 when never set).
func (k *Kit) Price(symbol string) float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.prices[symbol]; ok {
		return p
	}
	return 100
}

// PlaceOrder records an order for apiKey. Market orders fill at once; limit
// orders rest as NEW.
func (k *Kit) PlaceOrder(o Order) *Order {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nextID++
	o.ID = strconv.FormatInt(k.nextID, 10)
	o.Created = k.Now()
	if o.Status == "" {
		o.Status = "NEW"
	}
	st := o
	k.orders[o.ID] = &st
	return &st
}

// CancelOrder cancels apiKey's order with the given id or client order id.
func (k *Kit) CancelOrder(apiKey, id, clientID string) (*Order, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, o := range k.orders {
		if o.APIKey != apiKey || o.Status != "NEW" {
			continue
		}
		if (id != "" && o.ID == id) || (clientID != "" && o.ClientOrderID == clientID) {
			o.Status = "CANCELED"
			c := *o
			return &c, true
		}
	}
	return nil, false
}

// Orders returns a copy of every order of apiKey, oldest first.
func (k *Kit) Orders(apiKey string) []Order {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Order
	for _, o := range k.orders {
		if o.APIKey == apiKey {
			out = append(out, *o)
		}
	}
	// Ids are increasing decimal numbers: shorter is older.
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].ID) != len(out[j].ID) {
			return len(out[i].ID) < len(out[j].ID)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Record appends l to the request log.
func (k *Kit) Record(l Logged) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.log = append(k.log, l)
}

// Log returns a copy of every request received so far.
func (k *Kit) Log() []Logged {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Logged(nil), k.log...)
}

// ResetLog forgets the request log.
func (k *Kit) ResetLog() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.log = nil
}

// Inject queues a fault.
func (k *Kit) Inject(f Fault) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.faults = append(k.faults, f)
}

// ClearFaults removes every queued fault.
func (k *Kit) ClearFaults() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.faults = nil
}

func (k *Kit) nextFault() (Fault, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.faults) == 0 {
		return Fault{}, false
	}
	f := k.faults[0]
	if f.Count > 0 {
		k.faults[0].Count--
		if k.faults[0].Count == 0 {
			k.faults = k.faults[1:]
		}
	}
	return f, true
}

// Faults wraps next so that queued faults apply before the venue logic. Every
// simulator serves through it.
func (k *Kit) Faults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := k.nextFault()
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if f.Hang {
			<-r.Context().Done()
			return
		}
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if f.Status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Seconds())))
		}
		body := f.Body
		if body == "" {
			body = fmt.Sprintf(`{"error":"simulated %d"}`, f.Status)
		}
		if f.Truncate {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)+100))
			w.WriteHeader(f.Status)
			_, _ = w.Write([]byte(body))
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
				}
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(body))
	})
}

// WithWS serves WebSocket upgrades with ws and every other request with
// rest: a venue's REST and WebSocket simulators on one loopback address.
func WithWS(rest, ws http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			ws.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}
