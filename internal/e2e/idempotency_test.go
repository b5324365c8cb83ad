package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/gateway"
)

// TestRetryAfterUnknownOutcome is A31's point through the whole stack: the
// venue answers an order with a 5xx, so its state is unknown (502); the
// bot's retry of the same order, freshly signed with the same
// newClientOrderId, is refused 409 before any allow intent, so it can never
// become a second order. A new client order id goes through.
func TestRetryAfterUnknownOutcome(t *testing.T) {
	h := newHostileEnv(t)
	kit := h.Sims["binance"].Kit
	body := orderBody + "&newClientOrderId=retry-after-unknown"
	// A first order fetches the reference price, so the fault below hits
	// the order itself.
	if warm := h.send(h.bot("trader", "POST", orderPath, "", orderBody).bytes(h.addr), false); warm.status != http.StatusOK {
		t.Fatalf("control order = %d %q, want 200", warm.status, trim(warm.body))
	}
	kit.Inject(sim.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	first := h.send(h.bot("trader", "POST", orderPath, "", body).bytes(h.addr), false)
	if first.status != http.StatusBadGateway {
		t.Fatalf("order answered by a venue 503 = %d %q, want 502 (state unknown)", first.status, trim(first.body))
	}
	h.Server.Gateway.Wait()
	h.mark()
	retry := h.send(h.bot("trader", "POST", orderPath, "", body).bytes(h.addr), false)
	var be binanceError
	if retry.status != http.StatusConflict || json.Unmarshal(retry.body, &be) != nil || be.Code != -1002 {
		t.Fatalf("retry with the same client order id = %d %q, want 409 with Binance code -1002", retry.status, trim(retry.body))
	}
	recs := h.newRecords()
	if len(recs) != 1 || recs[0].Type != audit.TypeDenied || recs[0].Intent == nil || recs[0].Intent.Rule != gateway.RuleDuplicateOrder {
		t.Errorf("records of the retry = %+v, want one denial with rule %s", recs, gateway.RuleDuplicateOrder)
	}
	if n := len(h.simLog()) - h.simMark; n != 0 {
		t.Errorf("the simulator received %d requests from the retry, want 0", n)
	}
	for _, o := range kit.Orders(h.key.APIKey) {
		if o.ClientOrderID == "retry-after-unknown" {
			t.Errorf("the simulator holds an order retry-after-unknown: the retry went through")
		}
	}
	other := h.send(h.bot("trader", "POST", orderPath, "", orderBody+"&newClientOrderId=retry-other").bytes(h.addr), false)
	if other.status != http.StatusOK {
		t.Errorf("an order with a new client order id = %d %q, want 200", other.status, trim(other.body))
	}
}
