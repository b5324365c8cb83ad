package bitget

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Bitget v2 manages API keys of (virtual) sub-accounts only, and only
// through the main account's key (spec §9 d, §14.1). The paths, fields and
// answers below follow Bitget's v2 "Virtual Subaccount" API pages; see
// docs/bitget-keys.md for what is documented and what is inferred.
const (
	pathCreateKey = "/api/v2/user/create-virtual-subaccount-apikey"
	pathModifyKey = "/api/v2/user/modify-virtual-subaccount-apikey"
	pathListKeys  = "/api/v2/user/virtual-subaccount-apikey-list"
)

// NeutralIP is the IP allowlist a "deleted" key is left with. Bitget v2 has
// no call to delete a sub-account key, so keywarden neutralises it instead:
// no permissions, and an allowlist holding only 192.0.2.1, an address of
// TEST-NET-1 (RFC 5737) that is never routed on the Internet, so no request
// can come from it.
const NeutralIP = "192.0.2.1"

// neutralLabel is the label a neutralised key is given (Bitget requires
// one on every modification).
const neutralLabel = "kw-neutralised"

// Limits from Bitget's docs: a label of at most 20 characters, at most 30
// addresses in the allowlist, a passphrase of 8 to 32 letters and digits.
const (
	maxLabel = 20
	maxIPs   = 30
)

// Permissions are the permList names keywarden grants through the API.
// Bitget's current docs list read, spot_trade, margin_trade, contract_trade
// and transfer. Withdrawal cannot be granted this way.
var Permissions = []string{"read", "spot_trade", "margin_trade", "contract_trade", "transfer"}

// DeleteNote says what DeleteKeyRequest really does at Bitget; rotation and
// key revoke report it instead of "deleted".
const DeleteNote = "neutralised at Bitget (no API call deletes a sub-account key): its permissions were removed and its IP allowlist set to " +
	NeutralIP + "; delete it in Bitget's API key management page"

// keyManager builds the virtual sub-account key requests. Bitget does not
// echo the passphrase chosen for a new key, so the manager remembers each
// one between CreateKeyRequest and ParseCreatedKey (one HTTPVenue call). It
// is safe for concurrent use.
type keyManager struct {
	mu      sync.Mutex
	pending map[pendingKey][]byte // passphrase by sub-account and label
}

type pendingKey struct{ sub, label string }

// maxPending bounds the remembered passphrases of creations whose answer
// never came.
const maxPending = 64

var _ exchange.KeyManager = (*keyManager)(nil)

func newKeyManager() *keyManager { return &keyManager{pending: map[pendingKey][]byte{}} }

// createKeyBody is the create request, fields in the docs' order.
type createKeyBody struct {
	SubAccountUID string   `json:"subAccountUid"`
	Passphrase    string   `json:"passphrase"`
	Label         string   `json:"label"`
	IPList        []string `json:"ipList,omitempty"`
	PermList      []string `json:"permList"`
}

// modifyKeyBody is the modify request. PermList is never omitted: Bitget
// keeps the key's permissions when the field is absent and removes them
// all when it is an empty list. IPList is never omitted either: an absent
// list empties the allowlist.
type modifyKeyBody struct {
	SubAccountUID    string   `json:"subAccountUid"`
	SubAccountAPIKey string   `json:"subAccountApiKey"`
	Passphrase       string   `json:"passphrase"`
	Label            string   `json:"label"`
	IPList           []string `json:"ipList"`
	PermList         []string `json:"permList"`
}

// keyInfo is a key as Bitget describes it in create, modify and list
// answers.
type keyInfo struct {
	SubAccountUID    string   `json:"subAccountUid"`
	Label            string   `json:"label"`
	SubAccountAPIKey string   `json:"subAccountApiKey"`
	SecretKey        string   `json:"secretKey,omitempty"`
	PermList         []string `json:"permList"`
	IPList           []string `json:"ipList"`
}

// CreateKeyRequest builds POST /api/v2/user/create-virtual-subaccount-apikey
// for the sub-account spec.SubAccount (its UID) with a fresh passphrase
// from crypto/rand. Sign it with the main account's key.
func (m *keyManager) CreateKeyRequest(spec exchange.KeySpec) (*exchange.Request, error) {
	if !isUID(spec.SubAccount) {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "bitget: create key: Bitget creates keys only for sub-accounts: give the sub-account's UID (digits)")
	}
	perms := spec.Permissions
	if len(perms) == 0 {
		perms = []string{"read"}
	}
	for _, p := range perms {
		if !slices.Contains(Permissions, p) {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "bitget: create key: permission %q cannot be granted by API (use %s)",
				exchange.SafeName(p), strings.Join(Permissions, ", "))
		}
	}
	ips, err := checkIPs(spec.IPs)
	if err != nil {
		return nil, err
	}
	label := shortLabel(spec.Label)
	pass := newPassphrase()
	body, err := json.Marshal(createKeyBody{SubAccountUID: spec.SubAccount, Passphrase: pass, Label: label, IPList: ips, PermList: perms})
	if err != nil {
		return nil, fmt.Errorf("bitget: create key: %w", err)
	}
	m.remember(pendingKey{spec.SubAccount, label}, []byte(pass))
	return &exchange.Request{Method: http.MethodPost, Path: pathCreateKey,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body}, nil
}

func (m *keyManager) remember(k pendingKey, pass []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pending) >= maxPending {
		for old, p := range m.pending { // forget one creation that never answered
			clear(p)
			delete(m.pending, old)
			break
		}
	}
	if p, ok := m.pending[k]; ok {
		clear(p)
	}
	m.pending[k] = pass
}

// take returns and forgets the passphrase chosen for the key of sub and
// label; when Bitget changed the label, the only pending one of sub.
func (m *keyManager) take(sub, label string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := pendingKey{sub, label}
	if p, ok := m.pending[k]; ok {
		delete(m.pending, k)
		return p
	}
	var only *pendingKey
	for pk := range m.pending {
		if pk.sub == sub {
			if only != nil {
				return nil
			}
			c := pk
			only = &c
		}
	}
	if only == nil {
		return nil
	}
	p := m.pending[*only]
	delete(m.pending, *only)
	return p
}

// ParseCreatedKey reads the new key and secret from Bitget's answer and
// adds the passphrase chosen in CreateKeyRequest. The sub-account UID is
// kept in the credential's Account.
func (m *keyManager) ParseCreatedKey(status int, body []byte) (*exchange.Credential, error) {
	k, err := decodeKeyReply("create key", status, body)
	if err != nil {
		return nil, err
	}
	if k.SubAccountAPIKey == "" || k.SecretKey == "" {
		return nil, errors.New("bitget: create key: the answer lacks the key or its secret")
	}
	pass := m.take(k.SubAccountUID, k.Label)
	if pass == nil {
		return nil, errors.New("bitget: create key: the answer names no key this manager asked for")
	}
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: k.SubAccountAPIKey, Secret: exchange.Secret(k.SecretKey),
		Passphrase: exchange.Secret(pass), Account: k.SubAccountUID}, nil
}

// DeleteKeyRequest neutralises apiKey, as Bitget v2 cannot delete a
// sub-account key: POST /api/v2/user/modify-virtual-subaccount-apikey with
// an empty permList and an allowlist of NeutralIP only. It needs the
// sub-account's UID and the key's passphrase, and must be signed with the
// main account's key.
func (m *keyManager) DeleteKeyRequest(apiKey string, spec exchange.KeySpec) (*exchange.Request, error) {
	if apiKey == "" || !isUID(spec.SubAccount) || len(spec.Passphrase) == 0 {
		return nil, exchange.Errorf(exchange.ErrBadRequest,
			"bitget: delete key: Bitget has no delete call; neutralising the key needs the main account's key, the sub-account's UID and the key's passphrase")
	}
	body, err := json.Marshal(modifyKeyBody{SubAccountUID: spec.SubAccount, SubAccountAPIKey: apiKey, Passphrase: string(spec.Passphrase),
		Label: neutralLabel, IPList: []string{NeutralIP}, PermList: []string{}})
	if err != nil {
		return nil, fmt.Errorf("bitget: delete key: %w", err)
	}
	return &exchange.Request{Method: http.MethodPost, Path: pathModifyKey,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: body}, nil
}

// ParseDeleted checks Bitget's answer to DeleteKeyRequest: success, and the
// key left with no permission and only NeutralIP allowed.
func (m *keyManager) ParseDeleted(status int, body []byte) error {
	k, err := decodeKeyReply("delete key", status, body)
	if err != nil {
		return err
	}
	if len(k.PermList) != 0 || !slices.Equal(k.IPList, []string{NeutralIP}) {
		return fmt.Errorf("bitget: delete key: the key was modified but Bitget reports %d permissions and %d allowed addresses, want none and %s",
			len(k.PermList), len(k.IPList), NeutralIP)
	}
	return nil
}

// DeleteNote says what a deletion does at Bitget.
func (m *keyManager) DeleteNote() string { return DeleteNote }

// ListKeysRequest builds GET /api/v2/user/virtual-subaccount-apikey-list
// for the sub-account sub.
func ListKeysRequest(sub string) *exchange.Request {
	return &exchange.Request{Method: http.MethodGet, Path: pathListKeys, RawQuery: "subAccountUid=" + sub, Header: http.Header{}}
}

// decodeKeyReply reads a key-management answer.
func decodeKeyReply(what string, status int, body []byte) (keyInfo, error) {
	var rep struct {
		Code string          `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return keyInfo{}, fmt.Errorf("bitget: %s: status %d: malformed answer", what, status)
	}
	if status != http.StatusOK || rep.Code != "00000" {
		return keyInfo{}, fmt.Errorf("bitget: %s: status %d: bitget code %s: %s", what, status,
			exchange.SafeName(rep.Code), exchange.SafeName(rep.Msg))
	}
	var k keyInfo
	if err := json.Unmarshal(rep.Data, &k); err != nil {
		return keyInfo{}, fmt.Errorf("bitget: %s: malformed answer", what)
	}
	return k, nil
}

// isUID says whether s is a Bitget user id: digits only.
func isUID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkIPs validates an allowlist: at most 30 plain addresses.
func checkIPs(ips []string) ([]string, error) {
	if len(ips) > maxIPs {
		return nil, exchange.Errorf(exchange.ErrBadRequest, "bitget: create key: at most %d IP addresses", maxIPs)
	}
	out := make([]string, 0, len(ips))
	for _, s := range ips {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" {
			return nil, exchange.Errorf(exchange.ErrBadRequest, "bitget: create key: %q is not an IP address", exchange.SafeName(s))
		}
		out = append(out, a.String())
	}
	return out, nil
}

// shortLabel fits label to Bitget's 20 characters of letters, digits, '-'
// and '_': "keywarden-" becomes "kw-", other characters become '-', and a
// longer label keeps its end, where rotation puts its timestamp.
func shortLabel(label string) string {
	if rest, ok := strings.CutPrefix(label, "keywarden-"); ok {
		label = "kw-" + rest
	}
	b := []byte(label)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) > maxLabel {
		b = b[len(b)-maxLabel:]
	}
	if len(b) == 0 || !(b[0] >= 'a' && b[0] <= 'z' || b[0] >= 'A' && b[0] <= 'Z') {
		b = append([]byte("k"), b...)
		if len(b) > maxLabel {
			b = append(b[:1], b[len(b)-maxLabel+1:]...)
		}
	}
	return string(b)
}

// newPassphrase returns 28 letters and digits, 130 bits from crypto/rand:
// Bitget asks for 8 to 32 English letters and digits.
func newPassphrase() string {
	return "k" + rand.Text() + "7"
}
