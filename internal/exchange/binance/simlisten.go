package binance

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// ListenKeyValidity is how long a Binance listen key lives without a
// keep-alive.
const ListenKeyValidity = 60 * time.Minute

// simListenKeys are the listen keys the simulator issued, as Binance keeps
// them: one per API key and product family (spot, margin, isolated margin
// per symbol, USDⓈ-M futures), valid for 60 minutes after its creation or
// last keep-alive. The REST and WebSocket simulators of one
// SimulatorWithWS share them, so a stream on a closed or expired key ends.
// It is safe for concurrent use.
type simListenKeys struct {
	mu   sync.Mutex
	keys map[string]*simListenKey // by listen key
}

type simListenKey struct {
	apiKey, family string
	expires        time.Time
}

func newSimListenKeys() *simListenKeys { return &simListenKeys{keys: map[string]*simListenKey{}} }

// family names the product a USER_STREAM path serves.
func listenFamily(path string, ps exchange.Params) string {
	switch path {
	case "/fapi/v1/listenKey":
		return "usdm"
	case "/sapi/v1/userDataStream":
		return "margin"
	case "/sapi/v1/userDataStream/isolated":
		return "isolated:" + ps.Get("symbol")
	}
	return "spot"
}

// create returns apiKey's live key of family, extended, or a new one.
func (l *simListenKeys) create(apiKey, family string, now time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.keys {
		if now.After(v.expires) {
			delete(l.keys, k)
			continue
		}
		if v.apiKey == apiKey && v.family == family {
			v.expires = now.Add(ListenKeyValidity)
			return k
		}
	}
	k := randomID() + randomID()
	k = k[:60]
	l.keys[k] = &simListenKey{apiKey: apiKey, family: family, expires: now.Add(ListenKeyValidity)}
	return k
}

// find returns the live key apiKey holds: the one named, or for futures
// (where calls name none) the account's only one.
func (l *simListenKeys) find(apiKey, family, named string, now time.Time) (string, *simListenKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.keys {
		if v.apiKey != apiKey || v.family != family || now.After(v.expires) {
			continue
		}
		if named == "" || named == k {
			return k, v
		}
	}
	return "", nil
}

func (l *simListenKeys) extend(k string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.keys[k]; ok {
		v.expires = now.Add(ListenKeyValidity)
	}
}

func (l *simListenKeys) remove(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, k)
}

// Valid says whether listen key k is live.
func (l *simListenKeys) Valid(k string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.keys[k]
	return ok && !now.After(v.expires)
}

// ListenKeyValid says whether the simulator issued listen key k and it is
// neither closed nor expired.
func (s *Simulator) ListenKeyValid(k string) bool { return s.listen.Valid(k, s.kit.Now()) }

// listenKey serves POST, PUT and DELETE on the USER_STREAM paths as
// Binance does: POST returns the account's live key (extended) or a new
// one; PUT extends the key named by listenKey (futures: the account's key,
// returned); DELETE closes it. An unknown key is error -1125.
func (s *Simulator) listenKey(w http.ResponseWriter, c *simCtx, method, path string) {
	family := listenFamily(path, c.params)
	apiKey := c.account.Key.APIKey
	if method == http.MethodPost {
		writeJSON(w, http.StatusOK, map[string]string{"listenKey": s.listen.create(apiKey, family, c.now)})
		return
	}
	named := c.params.Get("listenKey")
	if named == "" && family != "usdm" {
		errorWriter{}.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, msgMandatory, "listenKey"))
		return
	}
	k, v := s.listen.find(apiKey, family, named, c.now)
	if v == nil {
		writeJSON(w, http.StatusBadRequest, apiError{Code: -1125, Msg: "This listenKey does not exist."})
		return
	}
	if method == http.MethodPut {
		s.listen.extend(k, c.now)
		if family == "usdm" {
			writeJSON(w, http.StatusOK, map[string]string{"listenKey": k})
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	s.listen.remove(k)
	writeJSON(w, http.StatusOK, struct{}{})
}

// listenKeyLive says whether a stream name is a live listen key; with no
// REST simulator attached every listen-key-shaped name is.
func (s *WSSimulator) listenKeyLive(name string) bool {
	if s.listen == nil {
		return true
	}
	return s.listen.Valid(name, s.kit.Now())
}

// deadListenKey returns the first listen key in names that is no longer
// live, or "".
func (s *WSSimulator) deadListenKey(names []string) string {
	for _, n := range names {
		if isListenKey(n) && !strings.Contains(n, "@") && !s.listenKeyLive(n) {
			return n
		}
	}
	return ""
}
