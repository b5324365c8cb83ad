package hyperliquid

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// Simulator is a loopback stand-in for Hyperliquid's POST /exchange and
// POST /info. For every action it rebuilds the signed digest from the
// parsed body (msgpack in member order, as the venue re-encodes), recovers
// the signer and checks it is a registered master wallet (a Kit account
// whose APIKey is the lower-case address) or an agent approved for one;
// user-signed actions need the master. Nonces are checked per signer as
// Hyperliquid does: within (T-2d, T+1d), unused, and above the smallest of
// the signer's 100 highest. approveAgent replaces the master's agent of the
// same name and refuses an address that was ever approved before. Every
// request is logged in the Kit. A Simulator is safe for concurrent use.
type Simulator struct {
	kit *sim.Kit
	net Network
	h   http.Handler

	mu     sync.Mutex
	agents map[eip712.Address]simAgent
	used   map[eip712.Address]bool
	nonces map[eip712.Address][]uint64 // ascending, at most 100
}

type simAgent struct {
	master eip712.Address
	name   string
	added  time.Time
}

// NewSimulator returns a mainnet Simulator over kit.
func NewSimulator(kit *sim.Kit) *Simulator { return NewNetworkSimulator(kit, Mainnet) }

// NewNetworkSimulator returns a Simulator that checks signatures for net.
func NewNetworkSimulator(kit *sim.Kit, net Network) *Simulator {
	s := &Simulator{kit: kit, net: net, agents: map[eip712.Address]simAgent{},
		used: map[eip712.Address]bool{}, nonces: map[eip712.Address][]uint64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /exchange", s.exchange)
	mux.HandleFunc("POST /info", s.info)
	s.h = kit.Faults(mux)
	return s
}

func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// ApproveAgent registers agent for master under name, as a master-signed
// approveAgent would. It refuses an address approved before.
func (s *Simulator) ApproveAgent(master, agent eip712.Address, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.approveLocked(master, agent, name)
}

func (s *Simulator) approveLocked(master, agent eip712.Address, name string) error {
	if s.used[agent] {
		return fmt.Errorf("agent address %s was already used", agent.Hex())
	}
	if _, ok := s.kit.Account(agent.Hex()); ok || agent == master {
		return fmt.Errorf("agent address %s is a user", agent.Hex())
	}
	for a, ag := range s.agents {
		if ag.master == master && ag.name == name {
			delete(s.agents, a)
		}
	}
	s.used[agent] = true
	s.agents[agent] = simAgent{master: master, name: name, added: s.kit.Now()}
	return nil
}

// Agents returns the addresses of master's approved agents, sorted.
func (s *Simulator) Agents(master eip712.Address) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for a, ag := range s.agents {
		if ag.master == master {
			out = append(out, a.Hex())
		}
	}
	slices.Sort(out)
	return out
}

func simErr(msg string) any { return map[string]any{"status": "err", "response": msg} }

func simOK(typ string, data any) any {
	resp := map[string]any{"type": typ}
	if data != nil {
		resp["data"] = data
	}
	return map[string]any{"status": "ok", "response": resp}
}

func (s *Simulator) exchange(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	logged := sim.Logged{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	if err != nil {
		logged.Error = "body too large"
		s.kit.Record(logged)
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	status, out := s.act(body, logged)
	if msg, ok := out.(string); ok && status != http.StatusOK {
		http.Error(w, msg, status)
		return
	}
	writeJSON(w, status, out)
}

// act runs one signed /exchange body (from POST /exchange or a WebSocket
// post) and returns the HTTP status and the answer: the venue's JSON, or
// a plain-text message when the status is not 200. logged is recorded.
func (s *Simulator) act(body []byte, logged sim.Logged) (int, any) {
	reject := func(status int, msg string) (int, any) {
		logged.Error = msg
		s.kit.Record(logged)
		if status == http.StatusOK {
			return status, simErr(msg)
		}
		return status, msg
	}
	env, err := parseEnvelope(body)
	if err != nil {
		return reject(http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: "+err.Error())
	}
	if env.Sig == nil {
		return reject(http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type: missing field `signature`")
	}
	d, err := env.digest(s.net)
	if err != nil {
		return reject(http.StatusOK, err.Error())
	}
	signer, err := eip712.Recover(d, *env.Sig)
	if err != nil {
		return reject(http.StatusOK, "Invalid signature: "+err.Error())
	}
	now := s.kit.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	master, isAgent := signer, false
	if ag, ok := s.agents[signer]; ok {
		master, isAgent = ag.master, true
	} else if _, ok := s.kit.Account(signer.Hex()); !ok {
		return reject(http.StatusOK, "User or API Wallet "+signer.Hex()+" does not exist.")
	}
	if isAgent && env.userSigned() {
		return reject(http.StatusOK, "Must be signed by the master wallet, not an API wallet: "+env.Type)
	}
	if msg := s.checkNonceLocked(signer, env.Nonce, now); msg != "" {
		return reject(http.StatusOK, msg)
	}
	if env.Expires != nil && !time.UnixMilli(int64(*env.Expires)).After(now) {
		return reject(http.StatusOK, "Action expired")
	}
	logged.APIKey, logged.Verified = master.Hex(), true
	s.kit.Record(logged)
	return http.StatusOK, s.execLocked(env, master)
}

// checkNonceLocked applies Hyperliquid's per-signer nonce rules and stores n.
func (s *Simulator) checkNonceLocked(signer eip712.Address, n uint64, now time.Time) string {
	t := time.UnixMilli(int64(n))
	if n > 1<<62 || !t.After(now.Add(-48*time.Hour)) || !t.Before(now.Add(24*time.Hour)) {
		return "Invalid nonce: nonce must be within (T - 2d, T + 1d)"
	}
	set := s.nonces[signer]
	if slices.Contains(set, n) {
		return "Invalid nonce: already used"
	}
	if len(set) >= 100 && n <= set[0] {
		return "Invalid nonce: lower than the smallest of the 100 highest nonces"
	}
	i, _ := slices.BinarySearch(set, n)
	set = slices.Insert(set, i, n)
	if len(set) > 100 {
		set = set[1:]
	}
	s.nonces[signer] = set
	return ""
}

func (s *Simulator) execLocked(env *envelope, master eip712.Address) any {
	a := env.Action
	key := master.Hex()
	switch env.Type {
	case "order":
		orders, err := describeOrders("order", a)
		if err != nil {
			return simErr(err.Error())
		}
		var statuses []any
		for _, o := range orders {
			so := s.kit.PlaceOrder(sim.Order{APIKey: key, Symbol: o.Symbol, Side: string(o.Side), Type: o.Type,
				Quantity: o.Quantity, Price: o.Price, ClientOrderID: o.ClientOrderID})
			oid, _ := strconv.ParseInt(so.ID, 10, 64)
			statuses = append(statuses, map[string]any{"resting": map[string]any{"oid": oid}})
		}
		return simOK("order", map[string]any{"statuses": statuses})
	case "cancel", "cancelByCloid":
		v, _ := a.Get("cancels")
		list, _ := v.([]any)
		var statuses []any
		for _, it := range list {
			m, ok := it.(*eip712.Object)
			if !ok {
				return simErr("cancels must hold objects")
			}
			var id, cloid string
			if o, ok := m.Get("o"); ok {
				id = numString(o)
			}
			cloid, _ = stringMember(m, "cloid")
			if _, ok := s.kit.CancelOrder(key, id, cloid); ok {
				statuses = append(statuses, "success")
			} else {
				statuses = append(statuses, map[string]any{"error": "Order was never placed, already canceled, or filled."})
			}
		}
		return simOK("cancel", map[string]any{"statuses": statuses})
	case "approveAgent":
		addrS, _ := stringMember(a, "agentAddress")
		agent, err := eip712.ParseAddress(addrS)
		if err != nil {
			return simErr("invalid agentAddress")
		}
		name, _ := stringMember(a, "agentName")
		if err := s.approveLocked(master, agent, name); err != nil {
			return simErr(err.Error())
		}
		return simOK("default", nil)
	case "usdSend", "withdraw3", "spotSend":
		amt, _ := stringMember(a, "amount")
		asset := "USDC"
		if t, ok := stringMember(a, "token"); ok {
			asset, _, _ = strings.Cut(t, ":")
		}
		f := exchange.ParseFloat(amt)
		if !exchange.PlainDecimal(amt, false) || f <= 0 || !s.kit.Debit(key, asset, f) {
			return simErr("Insufficient balance for withdrawal")
		}
		return simOK("default", nil)
	default:
		return simOK("default", nil)
	}
}

func (s *Simulator) info(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	s.kit.Record(sim.Logged{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	out, ok := s.infoAnswer(body)
	if !ok {
		http.Error(w, "Failed to deserialize the JSON body", http.StatusUnprocessableEntity)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// infoAnswer answers one /info body; ok is false when it is no JSON object.
func (s *Simulator) infoAnswer(body []byte) (any, bool) {
	v, err := eip712.DecodeOrdered(body)
	o, ok := v.(*eip712.Object)
	if err != nil || !ok {
		return nil, false
	}
	typ, _ := stringMember(o, "type")
	userS, _ := stringMember(o, "user")
	user, uerr := eip712.ParseAddress(userS)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch typ {
	case "extraAgents":
		out := []any{}
		if uerr == nil {
			for a, ag := range s.agents {
				if ag.master == user {
					out = append(out, map[string]any{"name": ag.name, "address": a.Hex(), "validUntil": ag.added.Add(180 * 24 * time.Hour).UnixMilli()})
				}
			}
		}
		return out, true
	case "userRole":
		switch {
		case uerr != nil:
			return map[string]any{"role": "missing"}, true
		case s.agents[user].master != (eip712.Address{}):
			return map[string]any{"role": "agent", "data": map[string]any{"user": s.agents[user].master.Hex()}}, true
		default:
			if _, ok := s.kit.Account(user.Hex()); ok {
				return map[string]any{"role": "user"}, true
			}
			return map[string]any{"role": "missing"}, true
		}
	case "openOrders":
		out := []any{}
		for _, od := range s.kit.Orders(user.Hex()) {
			if od.Status != "NEW" {
				continue
			}
			side := "A"
			if od.Side == string(exchange.Buy) {
				side = "B"
			}
			oid, _ := strconv.ParseInt(od.ID, 10, 64)
			out = append(out, map[string]any{"coin": simCoin(od.Symbol), "side": side, "limitPx": strconv.FormatFloat(od.Price, 'f', -1, 64),
				"sz": strconv.FormatFloat(od.Quantity, 'f', -1, 64), "oid": oid, "timestamp": od.Created.UnixMilli(), "cloid": od.ClientOrderID})
		}
		return out, true
	case "clearinghouseState":
		usdc := strconv.FormatFloat(s.kit.Balances(user.Hex())["USDC"], 'f', -1, 64)
		summary := map[string]any{"accountValue": usdc, "totalMarginUsed": "0.0", "totalNtlPos": "0.0", "totalRawUsd": usdc}
		return map[string]any{"assetPositions": []any{}, "crossMaintenanceMarginUsed": "0.0",
			"crossMarginSummary": summary, "marginSummary": summary, "time": s.kit.Now().UnixMilli(), "withdrawable": usdc}, true
	case "spotClearinghouseState":
		bals := []any{}
		bal := s.kit.Balances(user.Hex())
		for _, coin := range slices.Sorted(maps.Keys(bal)) {
			total := bal[coin]
			bals = append(bals, map[string]any{"coin": coin, "hold": "0.0", "total": strconv.FormatFloat(total, 'f', -1, 64)})
		}
		return map[string]any{"balances": bals}, true
	case "userAbstraction":
		return "default", true
	case "meta", "spotMeta":
		return simMeta(typ), true
	default:
		return nil, true
	}
}
