package binance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
)

// TestWSAPIVerifyDocVector verifies the Binance WebSocket API docs example
// (spec §2.1 f, vector B5, https://developers.binance.com/docs/binance-spot-api-docs/web-socket-api)
// through WSAPI.Parse and Verify, and refuses it once tampered or late.
func TestWSAPIVerifyDocVector(t *testing.T) {
	const msg = `{"id":"4885f793-e5ad-4c3b-8f6c-55d891472b71","method":"order.place","params":{` +
		`"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","timeInForce":"GTC","price":"52000.00","quantity":"0.01000000",` +
		`"apiKey":"vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A","recvWindow":100,"timestamp":1645423376532,` +
		`"signature":"aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"}}`
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
		Secret: exchange.Secret("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j")}
	api := NewWSAPI(false)
	m, err := api.Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Signed || m.Logon || m.Public || m.ClientKey != cred.APIKey {
		t.Errorf("Parse = %+v, want a signed request by the docs key", m)
	}
	now := time.UnixMilli(1645423376532 + 50)
	if err := api.Verify([]byte(msg), m, cred, now); err != nil {
		t.Errorf("Verify(docs vector) = %v", err)
	}
	if err := api.Verify([]byte(msg), m, cred, now.Add(time.Second)); err == nil {
		t.Errorf("Verify accepted the request outside its 100 ms recvWindow")
	}
	tampered := []byte(msg[:len(msg)-10] + `0000"}}`)
	if err := api.Verify(tampered, m, cred, now); err == nil {
		t.Errorf("Verify accepted a tampered signature")
	}
	call, err := api.Describe([]byte(msg), m)
	if err != nil {
		t.Fatal(err)
	}
	want := []exchange.Order{{Action: exchange.ActionNew, Symbol: "BTCUSDT", Side: exchange.Sell, Type: "limit", Quantity: 0.01, Price: 52000, Notional: 520,
		QuantityText: "0.01000000", PriceText: "52000.00"}}
	if call.Scope != exchange.ScopeTrade || call.Endpoint != "POST /api/v3/order" {
		t.Errorf("Describe = %s %s, want trade POST /api/v3/order", call.Scope, call.Endpoint)
	}
	if d := cmp.Diff(want, call.Orders); d != "" {
		t.Errorf("Describe orders (-want +got):\n%s", d)
	}
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "EXCHANGEKEY", Secret: exchange.Secret("exchange-secret")}
	out, err := api.Sign([]byte(msg), m, key, now)
	if err != nil {
		t.Fatal(err)
	}
	om, err := api.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if om.ClientKey != "EXCHANGEKEY" {
		t.Errorf("signed apiKey %q, want the exchange key's", om.ClientKey)
	}
	if err := api.Verify(out, om, key, now); err != nil {
		t.Errorf("the re-signed request does not verify with the exchange key: %v", err)
	}
	if _, err := api.Sign([]byte(`{"id":1,"method":"session.logon","params":{"apiKey":"k","timestamp":1,"signature":"s"}}`),
		&exchange.WSMessage{Logon: true, Op: "session.logon"}, key, now); err == nil {
		t.Errorf("session.logon signed with an HMAC key, want a refusal (Ed25519 only)")
	}
}
