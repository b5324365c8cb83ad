package bitget

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCreateKeyRequest(t *testing.T) {
	km := newKeyManager()
	r, err := km.CreateKeyRequest(exchange.KeySpec{Label: "keywarden-bot-1700000000", SubAccount: "58281113",
		Permissions: []string{"spot_trade", "read"}, IPs: []string{"203.0.113.7", " 2001:db8::1 "}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Path != "/api/v2/user/create-virtual-subaccount-apikey" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("CreateKeyRequest = %s %s %v", r.Method, r.Path, r.Header)
	}
	var body createKeyBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := createKeyBody{SubAccountUID: "58281113", Passphrase: body.Passphrase, Label: "kw-bot-1700000000",
		IPList: []string{"203.0.113.7", "2001:db8::1"}, PermList: []string{"spot_trade", "read"}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(string(r.Body), `{"subAccountUid":"58281113","passphrase":"`) {
		t.Errorf("body %s: fields not in the docs' order", r.Body)
	}
	if !validPassphrase(body.Passphrase) || len(body.Passphrase) != 28 {
		t.Errorf("passphrase %q: want 28 letters and digits", body.Passphrase)
	}
	r2, err := km.CreateKeyRequest(exchange.KeySpec{Label: "other", SubAccount: "58281113"})
	if err != nil {
		t.Fatal(err)
	}
	var body2 createKeyBody
	if err := json.Unmarshal(r2.Body, &body2); err != nil {
		t.Fatal(err)
	}
	if body2.Passphrase == body.Passphrase {
		t.Errorf("two keys got the same passphrase")
	}
	if !cmp.Equal(body2.PermList, []string{"read"}) || body2.IPList != nil || strings.Contains(string(r2.Body), "ipList") {
		t.Errorf("default key body %s, want read only and no ipList", r2.Body)
	}

	bad := []struct {
		name string
		spec exchange.KeySpec
	}{
		{"no sub-account", exchange.KeySpec{Label: "x", Permissions: []string{"read"}}},
		{"sub-account by name", exchange.KeySpec{Label: "x", SubAccount: "bot1", Permissions: []string{"read"}}},
		{"withdraw", exchange.KeySpec{Label: "x", SubAccount: "1", Permissions: []string{"read", "wallet_withdraw"}}},
		{"unknown permission", exchange.KeySpec{Label: "x", SubAccount: "1", Permissions: []string{"everything"}}},
		{"not an address", exchange.KeySpec{Label: "x", SubAccount: "1", IPs: []string{"10.0.0.0/8"}}},
		{"too many addresses", exchange.KeySpec{Label: "x", SubAccount: "1", IPs: strings.Split(strings.Repeat("10.0.0.1,", 30)+"10.0.0.2", ",")}},
	}
	for _, tt := range bad {
		if _, err := km.CreateKeyRequest(tt.spec); err == nil {
			t.Errorf("%s: CreateKeyRequest = nil error, want one", tt.name)
		}
	}
}

func TestShortLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"keywarden-bot-1700000000", "kw-bot-1700000000"},
		{"keywarden-a-very-long-bot-name-1700000000", "kbot-name-1700000000"},
		{"kw-old", "kw-old"},
		{"bot é 1", "bot----1"},
		{"", "k"},
		{"1700000000", "k1700000000"},
		{"123456789012345678901234", "k6789012345678901234"},
	}
	for _, tt := range tests {
		got := shortLabel(tt.in)
		if got != tt.want || len(got) > maxLabel {
			t.Errorf("shortLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseCreatedKey(t *testing.T) {
	km := newKeyManager()
	r, err := km.CreateKeyRequest(exchange.KeySpec{Label: "kw-new", SubAccount: "58281113", Permissions: []string{"spot_trade"}})
	if err != nil {
		t.Fatal(err)
	}
	var sent createKeyBody
	if err := json.Unmarshal(r.Body, &sent); err != nil {
		t.Fatal(err)
	}
	ok := `{"code":"00000","msg":"success","requestTime":1,"data":{"subAccountUid":"58281113","label":"kw-new",` +
		`"subAccountApiKey":"bg_new","secretKey":"new-secret","permList":["spot_trade"],"ipList":[]}}`
	for _, tt := range []struct{ name, body string }{
		{"error code", `{"code":"40014","msg":"Incorrect permissions","requestTime":1,"data":null}`},
		{"no secret", strings.Replace(ok, `"secretKey":"new-secret"`, `"secretKey":""`, 1)},
		{"another sub-account", strings.Replace(ok, `"subAccountUid":"58281113"`, `"subAccountUid":"99"`, 1)},
		{"not json", `<html>`},
	} {
		if c, err := km.ParseCreatedKey(http.StatusOK, []byte(tt.body)); err == nil {
			t.Errorf("%s: ParseCreatedKey = %+v, want an error", tt.name, c)
		}
	}
	c, err := km.ParseCreatedKey(http.StatusOK, []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	want := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bg_new", Secret: exchange.Secret("new-secret"),
		Passphrase: exchange.Secret(sent.Passphrase), Account: "58281113"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ParseCreatedKey (-want +got):\n%s", diff)
	}
	if _, err := km.ParseCreatedKey(http.StatusOK, []byte(ok)); err == nil {
		t.Errorf("a second answer for the same key = nil error, want one: the passphrase is handed out once")
	}
}

func TestDeleteKeyRequest(t *testing.T) {
	km := newKeyManager()
	r, err := km.DeleteKeyRequest("bg_old", exchange.KeySpec{SubAccount: "58281113", Passphrase: exchange.Secret("OldPass123")})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"subAccountUid":"58281113","subAccountApiKey":"bg_old","passphrase":"OldPass123","label":"kw-neutralised",` +
		`"ipList":["192.0.2.1"],"permList":[]}`
	if r.Method != "POST" || r.Path != "/api/v2/user/modify-virtual-subaccount-apikey" || string(r.Body) != want {
		t.Errorf("DeleteKeyRequest = %s %s %s, want POST modify with %s", r.Method, r.Path, r.Body, want)
	}
	for _, tt := range []struct {
		key  string
		spec exchange.KeySpec
	}{
		{"bg_old", exchange.KeySpec{Passphrase: exchange.Secret("OldPass123")}},
		{"bg_old", exchange.KeySpec{SubAccount: "58281113"}},
		{"", exchange.KeySpec{SubAccount: "58281113", Passphrase: exchange.Secret("OldPass123")}},
	} {
		if _, err := km.DeleteKeyRequest(tt.key, tt.spec); err == nil || !strings.Contains(err.Error(), "no delete call") {
			t.Errorf("DeleteKeyRequest(%q, %+v) = %v, want an error saying Bitget cannot delete", tt.key, tt.spec, err)
		}
	}
}

func TestParseDeleted(t *testing.T) {
	km := newKeyManager()
	tests := []struct {
		name   string
		status int
		body   string
		ok     bool
	}{
		{"neutralised", 200, `{"code":"00000","msg":"success","data":{"subAccountUid":"1","subAccountApiKey":"bg_old","permList":[],"ipList":["192.0.2.1"]}}`, true},
		{"permissions kept", 200, `{"code":"00000","msg":"success","data":{"subAccountUid":"1","subAccountApiKey":"bg_old","permList":["read"],"ipList":["192.0.2.1"]}}`, false},
		{"allowlist emptied", 200, `{"code":"00000","msg":"success","data":{"subAccountUid":"1","subAccountApiKey":"bg_old","permList":[],"ipList":[]}}`, false},
		{"error with 200", 200, `{"code":"40012","msg":"Incorrect passphrase","data":null}`, false},
		{"error status", 400, `{"code":"40017","msg":"The apikey does not exist","data":null}`, false},
	}
	for _, tt := range tests {
		if err := km.ParseDeleted(tt.status, []byte(tt.body)); (err == nil) != tt.ok {
			t.Errorf("%s: ParseDeleted = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// keyEnv is a simulator with a main account's key allowed to manage
// sub-account keys from loopback.
type keyEnv struct {
	*simEnv
	master *exchange.Credential
	km     *keyManager
}

func newKeyEnv(t *testing.T) *keyEnv {
	e := newSimEnv(t)
	master := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bg_master", Secret: exchange.Secret("master-secret"), Passphrase: exchange.Secret("MasterPass1")}
	e.kit.AddAccount(sim.Account{Key: *master, Permissions: map[string]bool{"read": true, "admin": true}, IPs: []string{"127.0.0.1"}})
	return &keyEnv{simEnv: e, master: master, km: newKeyManager()}
}

// raw sends r signed with key and returns the status and body.
func (e *keyEnv) raw(t *testing.T, key *exchange.Credential, r *exchange.Request) (int, []byte) {
	t.Helper()
	if err := (signer{}).Sign(r, key, e.now); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(r.Method, e.srv.URL+r.Path+"?"+r.RawQuery, strings.NewReader(string(r.Body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *keyEnv) create(t *testing.T, spec exchange.KeySpec) *exchange.Credential {
	t.Helper()
	r, err := e.km.CreateKeyRequest(spec)
	if err != nil {
		t.Fatal(err)
	}
	st, b := e.raw(t, e.master, r)
	c, err := e.km.ParseCreatedKey(st, b)
	if err != nil {
		t.Fatalf("create key: %v (%s)", err, b)
	}
	return c
}

// code returns the Bitget code of a call made with key.
func (e *keyEnv) code(t *testing.T, key *exchange.Credential, method, path, body string) string {
	t.Helper()
	r := &exchange.Request{Method: method, Path: path, Header: http.Header{}, Body: []byte(body)}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	_, b := e.raw(t, key, r)
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s %s: %q", method, path, b)
	}
	return a.Code
}

func TestSimulatorKeyLifecycle(t *testing.T) {
	e := newKeyEnv(t)
	const order = `{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"40000","size":"0.1"}`
	const transfer = `{"fromType":"spot","toType":"usdt_futures","amount":"1","coin":"USDT"}`
	trader := e.create(t, exchange.KeySpec{Label: "kw-trader", SubAccount: "58281113", Permissions: []string{"spot_trade"}})
	reader := e.create(t, exchange.KeySpec{Label: "kw-reader", SubAccount: "58281113", Permissions: []string{"read"}})
	mover := e.create(t, exchange.KeySpec{Label: "kw-mover", SubAccount: "58281113", Permissions: []string{"transfer"}})
	elsewhere := e.create(t, exchange.KeySpec{Label: "kw-far", SubAccount: "58281113", Permissions: []string{"spot_trade"}, IPs: []string{"203.0.113.9"}})

	tests := []struct {
		name         string
		key          *exchange.Credential
		method, path string
		body         string
		want         string
	}{
		{"new key reads at once", trader, "GET", "/api/v2/spot/account/assets", "", "00000"},
		{"trade key trades", trader, "POST", "/api/v2/spot/trade/place-order", order, "00000"},
		{"trade key cannot transfer", trader, "POST", "/api/v2/spot/wallet/transfer", transfer, "40014"},
		{"trade key cannot withdraw", trader, "POST", "/api/v2/spot/wallet/withdrawal", `{"coin":"USDT","transferType":"on_chain","address":"T1","size":"1"}`, "40014"},
		{"read key reads", reader, "GET", "/api/v2/spot/account/info", "", "00000"},
		{"read key cannot trade", reader, "POST", "/api/v2/spot/trade/place-order", order, "40014"},
		{"transfer key transfers", mover, "POST", "/api/v2/spot/wallet/transfer", transfer, "00000"},
		{"allowlist enforced", elsewhere, "GET", "/api/v2/spot/account/assets", "", "40018"},
		{"sub-account key cannot make keys", trader, "GET", "/api/v2/user/virtual-subaccount-apikey-list?x", "", "40014"},
	}
	for _, tt := range tests {
		path, _, _ := strings.Cut(tt.path, "?")
		if got := e.code(t, tt.key, tt.method, path, tt.body); got != tt.want {
			t.Errorf("%s: code %s, want %s", tt.name, got, tt.want)
		}
	}

	// the list shows every key made for the sub-account, without secrets
	st, b := e.raw(t, e.master, ListKeysRequest("58281113"))
	var list struct {
		Code string    `json:"code"`
		Data []keyInfo `json:"data"`
	}
	if err := json.Unmarshal(b, &list); err != nil || st != 200 || list.Code != "00000" {
		t.Fatalf("list = %d %s", st, b)
	}
	var keys []string
	for _, k := range list.Data {
		keys = append(keys, k.SubAccountAPIKey+" "+k.Label+" "+strings.Join(k.PermList, ","))
		if k.SecretKey != "" {
			t.Errorf("list shows a secret")
		}
	}
	wantKeys := []string{trader.APIKey + " kw-trader spot_trade", reader.APIKey + " kw-reader read", mover.APIKey + " kw-mover transfer",
		elsewhere.APIKey + " kw-far spot_trade"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	// neutralising needs the key's passphrase
	del, err := e.km.DeleteKeyRequest(trader.APIKey, exchange.KeySpec{SubAccount: "58281113", Passphrase: exchange.Secret("WrongPass1")})
	if err != nil {
		t.Fatal(err)
	}
	if st, b := e.raw(t, e.master, del); e.km.ParseDeleted(st, b) == nil {
		t.Errorf("neutralise with a wrong passphrase = %d %s, want refused", st, b)
	}
	if got := e.code(t, trader, "GET", "/api/v2/spot/account/assets", ""); got != "00000" {
		t.Errorf("after a refused modification the key answers %s, want it still working", got)
	}
	del, err = e.km.DeleteKeyRequest(trader.APIKey, exchange.KeySpec{SubAccount: "58281113", Passphrase: trader.Passphrase})
	if err != nil {
		t.Fatal(err)
	}
	if st, b := e.raw(t, e.master, del); e.km.ParseDeleted(st, b) != nil {
		t.Fatalf("neutralise = %d %s", st, b)
	}
	if got := e.code(t, trader, "GET", "/api/v2/spot/account/assets", ""); got != "40018" {
		t.Errorf("neutralised key answers %s, want 40018 (IP)", got)
	}
	// another main account cannot touch the key
	other := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bg_other", Secret: exchange.Secret("other-secret"), Passphrase: exchange.Secret("OtherPass1")}
	e.kit.AddAccount(sim.Account{Key: *other, Permissions: map[string]bool{"read": true, "admin": true}, IPs: []string{"127.0.0.1"}})
	del, _ = e.km.DeleteKeyRequest(reader.APIKey, exchange.KeySpec{SubAccount: "58281113", Passphrase: reader.Passphrase})
	if st, b := e.raw(t, other, del); e.km.ParseDeleted(st, b) == nil {
		t.Errorf("another main account neutralised the key: %d %s", st, b)
	}
}

func TestSimulatorKeyAdminRefusals(t *testing.T) {
	e := newKeyEnv(t)
	unbound := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bg_unbound", Secret: exchange.Secret("unbound-secret"), Passphrase: exchange.Secret("Unbound123")}
	e.kit.AddAccount(sim.Account{Key: *unbound, Permissions: map[string]bool{"read": true, "admin": true}})
	body := func(s string) *exchange.Request {
		return &exchange.Request{Method: "POST", Path: pathCreateKey, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(s)}
	}
	tests := []struct {
		name string
		key  *exchange.Credential
		req  *exchange.Request
	}{
		{"main key without an IP allowlist", unbound, body(`{"subAccountUid":"1","passphrase":"Pass12345","label":"x","permList":["read"]}`)},
		{"short passphrase", e.master, body(`{"subAccountUid":"1","passphrase":"Pass1","label":"x","permList":["read"]}`)},
		{"label too long", e.master, body(`{"subAccountUid":"1","passphrase":"Pass12345","label":"abcdefghijklmnopqrstu","permList":["read"]}`)},
		{"withdraw permission", e.master, body(`{"subAccountUid":"1","passphrase":"Pass12345","label":"x","permList":["wallet_withdraw"]}`)},
		{"no permission", e.master, body(`{"subAccountUid":"1","passphrase":"Pass12345","label":"x","permList":[]}`)},
		{"range in allowlist", e.master, body(`{"subAccountUid":"1","passphrase":"Pass12345","label":"x","permList":["read"],"ipList":["10.0.0.0/8"]}`)},
		{"sub-account by name", e.master, body(`{"subAccountUid":"bot","passphrase":"Pass12345","label":"x","permList":["read"]}`)},
	}
	for _, tt := range tests {
		st, b := e.raw(t, tt.key, tt.req)
		if _, err := e.km.ParseCreatedKey(st, b); err == nil || !strings.Contains(err.Error(), "bitget code") {
			t.Errorf("%s: create = %d %s, want a Bitget error", tt.name, st, b)
		}
	}
	for i := range maxKeysPerSub {
		e.create(t, exchange.KeySpec{Label: "kw-" + string(rune('a'+i)), SubAccount: "7", Permissions: []string{"read"}})
	}
	r, _ := e.km.CreateKeyRequest(exchange.KeySpec{Label: "kw-over", SubAccount: "7", Permissions: []string{"read"}})
	if st, b := e.raw(t, e.master, r); st == 200 {
		t.Errorf("key %d for one sub-account = %d %s, want refused", maxKeysPerSub+1, st, b)
	}
}
