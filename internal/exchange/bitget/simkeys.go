package bitget

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

// maxKeysPerSub is Bitget's limit of API keys per UID.
const maxKeysPerSub = 10

// simSubKey is a sub-account key the simulator made for a main account.
type simSubKey struct {
	master, sub, label, passphrase string
	perms                          []string // Bitget's permList names
	ips                            []string
}

// simPerms maps Bitget's permList names to the simulator's permissions.
var simPerms = map[string][]string{
	"read":           {"read"},
	"spot_trade":     {"read", "trade"},
	"margin_trade":   {"read", "trade"},
	"contract_trade": {"read", "trade"},
	"transfer":       {"read", "transfer"},
}

// keyAdmin checks that c is a main account's key allowed to manage
// sub-account keys: the simulator's "admin" permission, and, as Bitget
// requires, an IP allowlist on the key.
func (s *Simulator) keyAdmin(w http.ResponseWriter, c *simCall) bool {
	if !c.acc.Allowed("admin") {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrPermission, "Incorrect permissions: only the main account's key manages sub-account keys"))
		return false
	}
	if len(c.acc.IPs) == 0 {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrPermission, "Incorrect permissions: the API key must be bound to an IP address"))
		return false
	}
	return true
}

// keyFields reads the fields common to create and modify. permList and
// ipList report whether they were present: Bitget treats an absent
// permList (on modify) and an absent ipList differently from empty ones.
type keyFields struct {
	sub, pass, label, apiKey string
	perms, ips               []string
	hasPerms                 bool
}

func readKeyFields(body any) (keyFields, bool) {
	o, isObj := body.(map[string]any)
	if !isObj {
		return keyFields{}, false
	}
	vals, err := getStrings(objFields(o), "subAccountUid", "passphrase", "label", "subAccountApiKey")
	if err != nil {
		return keyFields{}, false
	}
	f := keyFields{sub: vals[0], pass: vals[1], label: vals[2], apiKey: vals[3]}
	var ok bool
	if f.perms, f.hasPerms, ok = stringList(o["permList"]); !ok {
		return keyFields{}, false
	}
	if f.ips, _, ok = stringList(o["ipList"]); !ok {
		return keyFields{}, false
	}
	if !isUID(f.sub) || len(f.label) == 0 || len(f.label) > maxLabel || !validPassphrase(f.pass) || len(f.ips) > maxIPs {
		return keyFields{}, false
	}
	for _, p := range f.perms {
		if simPerms[p] == nil {
			return keyFields{}, false
		}
	}
	if _, err := checkIPs(f.ips); err != nil {
		return keyFields{}, false
	}
	return f, true
}

// stringList reads a JSON array of strings; present is false for an absent
// or null member.
func stringList(v any) (list []string, present, ok bool) {
	if v == nil {
		return nil, false, true
	}
	arr, isArr := v.([]any)
	if !isArr {
		return nil, true, false
	}
	list = []string{}
	for _, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			return nil, true, false
		}
		list = append(list, s)
	}
	return list, true, true
}

// validPassphrase is Bitget's rule: 8 to 32 English letters and digits.
func validPassphrase(p string) bool {
	if len(p) < 8 || len(p) > 32 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func permSet(perms []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range perms {
		for _, q := range simPerms[p] {
			out[q] = true
		}
	}
	return out
}

func (k *simSubKey) info(apiKey string) keyInfo {
	return keyInfo{SubAccountUID: k.sub, Label: k.label, SubAccountAPIKey: apiKey,
		PermList: append([]string{}, k.perms...), IPList: append([]string{}, k.ips...)}
}

// createSubKey serves POST /api/v2/user/create-virtual-subaccount-apikey:
// a new key for the sub-account, usable at once with the passphrase the
// request chose, the permList asked (never withdrawal) and the ipList.
func (s *Simulator) createSubKey(w http.ResponseWriter, c *simCall) {
	if !s.keyAdmin(w, c) {
		return
	}
	f, ok := readKeyFields(c.body)
	if !ok || f.apiKey != "" || len(f.perms) == 0 {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	var b [48]byte
	if _, err := rand.Read(b[:]); err != nil {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrUnavailable, "System is abnormal, please try again later"))
		return
	}
	apiKey, secret := "bg_"+hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	s.keysMu.Lock()
	n := 0
	for _, k := range s.subKeys {
		if k.sub == f.sub {
			n++
		}
	}
	if n >= maxKeysPerSub {
		s.keysMu.Unlock()
		writeJSON(w, http.StatusBadRequest, reply{Code: "40017", Msg: "The number of API keys has reached the limit", RequestTime: s.kit.Now().UnixMilli()})
		return
	}
	k := &simSubKey{master: c.acc.Key.APIKey, sub: f.sub, label: f.label, passphrase: f.pass, perms: f.perms, ips: f.ips}
	s.subKeys[apiKey] = k
	s.keyOrder = append(s.keyOrder, apiKey)
	s.keysMu.Unlock()
	s.kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: apiKey, Secret: exchange.Secret(secret),
		Passphrase: exchange.Secret(f.pass)}, Permissions: permSet(f.perms), IPs: f.ips})
	info := k.info(apiKey)
	info.SecretKey = secret
	s.ok(w, info)
}

// modifySubKey serves POST /api/v2/user/modify-virtual-subaccount-apikey:
// the main account that made the key changes its label, permissions (kept
// when permList is absent, all removed when it is empty) and allowlist
// (emptied when ipList is absent). The passphrase must be the key's.
func (s *Simulator) modifySubKey(w http.ResponseWriter, c *simCall) {
	if !s.keyAdmin(w, c) {
		return
	}
	f, ok := readKeyFields(c.body)
	if !ok || f.apiKey == "" {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	s.keysMu.Lock()
	k, found := s.subKeys[f.apiKey]
	if !found || k.master != c.acc.Key.APIKey || k.sub != f.sub {
		s.keysMu.Unlock()
		writeJSON(w, http.StatusBadRequest, reply{Code: "40017", Msg: "The apikey does not exist", RequestTime: s.kit.Now().UnixMilli()})
		return
	}
	if k.passphrase != f.pass {
		s.keysMu.Unlock()
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrPassphrase, "Incorrect passphrase"))
		return
	}
	k.label, k.ips = f.label, f.ips
	if f.hasPerms {
		k.perms = f.perms
	}
	info := k.info(f.apiKey)
	perms, ips := permSet(k.perms), slices.Clone(k.ips)
	s.keysMu.Unlock()
	// Replace the account rather than change it: requests in flight keep
	// reading the old one.
	if acc, ok := s.kit.Account(f.apiKey); ok {
		next := sim.Account{Key: acc.Key, Permissions: perms, IPs: ips, Balances: acc.Balances, Created: acc.Created}
		s.kit.RemoveAccount(f.apiKey)
		s.kit.AddAccount(next)
	}
	s.ok(w, info)
}

// listSubKeys serves GET /api/v2/user/virtual-subaccount-apikey-list: the
// keys the calling main account made for the sub-account, oldest first,
// without secrets.
func (s *Simulator) listSubKeys(w http.ResponseWriter, c *simCall) {
	if !s.keyAdmin(w, c) {
		return
	}
	sub := c.query.Get("subAccountUid")
	if !isUID(sub) {
		s.errs.WriteError(w, exchange.Errorf(exchange.ErrBadRequest, "Parameter verification failed"))
		return
	}
	s.keysMu.Lock()
	out := []keyInfo{}
	for _, apiKey := range s.keyOrder {
		if k := s.subKeys[apiKey]; k.master == c.acc.Key.APIKey && k.sub == sub {
			out = append(out, k.info(apiKey))
		}
	}
	s.keysMu.Unlock()
	s.ok(w, out)
}
