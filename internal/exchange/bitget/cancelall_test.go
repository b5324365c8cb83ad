package bitget

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/exchangetest"
	"github.com/keywarden/keywarden/internal/exchange/sim"
)

func TestCancelAllAgainstTheSimulator(t *testing.T) {
	key := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bitget-key", Secret: exchange.Secret("s3cret"), Passphrase: exchange.Secret("pass1234")}
	exchangetest.CheckCancelAll(t, exchangetest.CancelAllCase{
		Venue:        New,
		Simulator:    func(k *sim.Kit) http.Handler { return NewSimulator(k) },
		Canceller:    Canceller{},
		Key:          key,
		Other:        &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bitget-other", Secret: exchange.Secret("s3cret2"), Passphrase: exchange.Secret("pass5678")},
		BadSignature: exchangetest.WithSecret(key, exchange.Secret("wrong")),
		Unknown:      &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bitget-unknown", Secret: exchange.Secret("s3cret3"), Passphrase: exchange.Secret("pass0000")},
		Place: func(o exchangetest.Order, i int) *exchange.Request {
			b := fmt.Sprintf(`{"symbol":%q,"side":"buy","orderType":"limit","force":"gtc","price":"100","size":"1","clientOid":"cancel-%d"}`, o.Symbol, i)
			return &exchange.Request{Method: http.MethodPost, Path: "/api/v2/spot/trade/place-order", Body: []byte(b),
				Header: http.Header{"Content-Type": {"application/json"}}}
		},
		PlaceOK: `"code":"00000"`,
		// 60 per symbol: more than one batch-cancel of 50 each.
		KeyOrders:   exchangetest.Orders(120, "BTCUSDT", "ETHUSDT"),
		OtherOrders: exchangetest.Orders(2, "BTCUSDT"),
		Cancelled:   120,
		Scopes:      []string{"BTCUSDT", "ETHUSDT"},
		Extra: func(t *testing.T, kit *sim.Kit, _ exchange.CancelReport) {
			var products []string
			batches := 0
			for _, l := range kit.Log() {
				switch {
				case strings.HasSuffix(l.Path, "/api/v2/mix/order/cancel-all-orders"):
					var b struct {
						ProductType string `json:"productType"`
					}
					if err := json.Unmarshal(l.Body, &b); err != nil {
						t.Fatal(err)
					}
					products = append(products, b.ProductType)
				case strings.HasSuffix(l.Path, "/api/v2/spot/trade/batch-cancel-order"):
					var b struct {
						Symbol    string            `json:"symbol"`
						OrderList []json.RawMessage `json:"orderList"`
					}
					if err := json.Unmarshal(l.Body, &b); err != nil || b.Symbol == "" || len(b.OrderList) > 50 {
						t.Errorf("batch cancel %s, want a symbol and at most 50 orders", l.Body)
					}
					batches++
				}
			}
			// Each futures product type swept once; 60 orders per symbol
			// take two batches each.
			if got := strings.Join(products, ","); got != "USDT-FUTURES,COIN-FUTURES,USDC-FUTURES" {
				t.Errorf("futures sweeps %s, want USDT-FUTURES,COIN-FUTURES,USDC-FUTURES", got)
			}
			if batches != 4 {
				t.Errorf("%d batch cancels, want 4", batches)
			}
		},
	})
}

// TestSimulatorBatchCancel: the simulator's batch cancel refuses more than
// 50 orders and a missing symbol, and lists an order of another symbol or
// key as failed, leaving it open.
func TestSimulatorBatchCancel(t *testing.T) {
	env := newCancelEnv(t)
	mine := env.place(t, env.key, "BTCUSDT")
	theirs := env.place(t, env.other, "BTCUSDT")
	st, body := env.post(t, env.key, "/api/v2/spot/trade/batch-cancel-order",
		fmt.Sprintf(`{"symbol":"ETHUSDT","orderList":[{"orderId":%q}]}`, mine))
	if st != http.StatusOK || !strings.Contains(body, `"successList":[]`) || !strings.Contains(body, "43001") {
		t.Errorf("cancel under another symbol = %d %s, want the order in failureList", st, body)
	}
	st, body = env.post(t, env.key, "/api/v2/spot/trade/batch-cancel-order",
		fmt.Sprintf(`{"symbol":"BTCUSDT","orderList":[{"orderId":%q},{"orderId":%q}]}`, mine, theirs))
	var res struct {
		Data batchResult `json:"data"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || len(res.Data.SuccessList) != 1 || res.Data.SuccessList[0].OrderID != mine ||
		len(res.Data.FailureList) != 1 || res.Data.FailureList[0].OrderID != theirs {
		t.Errorf("batch cancel = %d %s, want mine cancelled and theirs failed", st, body)
	}
	if n := len(env.kit.OpenOrders(env.other.APIKey)); n != 1 {
		t.Errorf("the other key's open orders = %d, want 1", n)
	}
	refs := make([]string, 51)
	for i := range refs {
		refs[i] = fmt.Sprintf(`{"orderId":"%d"}`, i+1)
	}
	for _, b := range []string{
		`{"symbol":"BTCUSDT","orderList":[` + strings.Join(refs, ",") + `]}`,
		`{"orderList":[{"orderId":"1"}]}`,
		`{"symbol":"BTCUSDT","orderList":[]}`,
	} {
		if st, body := env.post(t, env.key, "/api/v2/spot/trade/batch-cancel-order", b); st == http.StatusOK {
			t.Errorf("batch cancel %.60s = %d %s, want a refusal", b, st, body)
		}
	}
	if st, body := env.post(t, env.key, "/api/v2/mix/order/cancel-all-orders", `{"marginCoin":"USDT"}`); st == http.StatusOK {
		t.Errorf("futures cancel-all without productType = %d %s, want a refusal", st, body)
	}
}

type cancelEnv struct {
	kit        *sim.Kit
	d          *exchange.HTTPDoer
	key, other *exchange.Credential
}

func newCancelEnv(t *testing.T) *cancelEnv {
	t.Helper()
	e := &cancelEnv{kit: sim.NewKit(),
		key:   &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bitget-key", Secret: exchange.Secret("s3cret"), Passphrase: exchange.Secret("pass1234")},
		other: &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bitget-other", Secret: exchange.Secret("s3cret2"), Passphrase: exchange.Secret("pass5678")}}
	for _, k := range []*exchange.Credential{e.key, e.other} {
		e.kit.AddAccount(sim.Account{Key: *k, Permissions: map[string]bool{"read": true, "trade": true}})
	}
	srv := httptest.NewServer(NewSimulator(e.kit))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	e.d = &exchange.HTTPDoer{Venue: New(u), Client: srv.Client()}
	return e
}

func (e *cancelEnv) post(t *testing.T, k *exchange.Credential, path, body string) (int, string) {
	t.Helper()
	st, b, err := e.d.Do(t.Context(), &exchange.Request{Method: http.MethodPost, Path: path, Body: []byte(body),
		Header: http.Header{"Content-Type": {"application/json"}}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return st, string(b)
}

func (e *cancelEnv) place(t *testing.T, k *exchange.Credential, sym string) string {
	t.Helper()
	st, body := e.post(t, k, "/api/v2/spot/trade/place-order",
		fmt.Sprintf(`{"symbol":%q,"side":"buy","orderType":"limit","force":"gtc","price":"100","size":"1"}`, sym))
	var r struct {
		Data struct {
			OrderID string `json:"orderId"`
		} `json:"data"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || r.Data.OrderID == "" {
		t.Fatalf("place %s: %d %s", sym, st, body)
	}
	return r.Data.OrderID
}
