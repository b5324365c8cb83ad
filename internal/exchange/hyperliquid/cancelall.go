package hyperliquid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
)

// Canceller cancels every open order of a key's account: POST /info
// {"type":"openOrders","user":<master>} lists the account's resting orders
// (perpetuals of the first perp dex, and spot) by coin name and oid; the
// coin names are mapped to asset ids through {"type":"meta"} (perpetuals:
// the index in universe) and {"type":"spotMeta"} (spot: 10000 + the pair's
// index); then one L1 "cancel" action per cancelBatch orders,
// {"type":"cancel","cancels":[{"a":asset,"o":oid},...]}, is signed by the
// key (the agent or the master wallet) through the venue's Signer. Orders
// of builder-deployed perp dexes (HIP-3, coins named "dex:COIN") are not
// listed by that query and are not cancelled.
type Canceller struct{}

// cancelBatch is how many orders one cancel action carries. Hyperliquid
// documents no limit; its rate limit grows with the batch (1 + n/40).
const cancelBatch = 100

// cancelClock gives the cancel action's nonce; the Signer replaces it with
// the signing key's next nonce.
var cancelClock = time.Now

// openOrder is one entry of an openOrders answer.
type openOrder struct {
	Coin string `json:"coin"`
	Oid  uint64 `json:"oid"`
}

// CancelAll implements the panic's order canceller.
func (Canceller) CancelAll(ctx context.Context, d exchange.Doer, key *exchange.Credential) (exchange.CancelReport, error) {
	var rep exchange.CancelReport
	user := key.Account
	if user == "" {
		user = key.APIKey
	}
	addr, err := eip712.ParseAddress(user)
	if err != nil {
		return rep, errors.New("hyperliquid: the key names no master account address")
	}
	user = addr.Hex()
	var open []openOrder
	if err := infoQuery(ctx, d, key, "openOrders", `{"type":"openOrders","user":"`+user+`"}`, &open); err != nil {
		return rep, err
	}
	if len(open) == 0 {
		return rep, nil
	}
	assets, err := assetIDs(ctx, d, key, open)
	if err != nil {
		return rep, err
	}
	type ref struct {
		asset uint64
		oid   uint64
	}
	var refs []ref
	var unknown []string
	for _, o := range open {
		a, ok := assets[o.Coin]
		if !ok {
			if !slices.Contains(unknown, o.Coin) {
				unknown = append(unknown, o.Coin)
			}
			continue
		}
		refs = append(refs, ref{a, o.Oid})
		if !slices.Contains(rep.Scopes, o.Coin) {
			rep.Scopes = append(rep.Scopes, o.Coin)
		}
	}
	slices.Sort(rep.Scopes)
	var errs []error
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("hyperliquid: no asset id for %s: those orders were not cancelled", exchange.SafeName(strings.Join(unknown, ", "))))
	}
	failed := 0
	for start := 0; start < len(refs); start += cancelBatch {
		batch := refs[start:min(start+cancelBatch, len(refs))]
		var b bytes.Buffer
		b.WriteString(`{"action":{"type":"cancel","cancels":[`)
		for i, r := range batch {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"a":%d,"o":%d}`, r.asset, r.oid)
		}
		fmt.Fprintf(&b, `]},"nonce":%d,"vaultAddress":null}`, cancelClock().UnixMilli())
		r := &exchange.Request{Method: http.MethodPost, Path: "/exchange", Body: b.Bytes(),
			Header: http.Header{"Content-Type": {"application/json"}}}
		st, body, err := d.Do(ctx, r, key)
		if err != nil {
			return rep, errors.Join(append(errs, fmt.Errorf("hyperliquid: cancel orders: %w", err))...)
		}
		ok, n, err := cancelStatuses(st, body)
		if err != nil {
			return rep, errors.Join(append(errs, err)...)
		}
		rep.Cancelled += ok
		failed += n
	}
	if failed > 0 {
		// Typically filled or cancelled between the listing and the
		// cancel; reported, not retried.
		errs = append(errs, fmt.Errorf("hyperliquid: %d open orders could not be cancelled", failed))
	}
	return rep, errors.Join(errs...)
}

// infoQuery posts an unsigned /info query and decodes its answer into out.
func infoQuery(ctx context.Context, d exchange.Doer, key *exchange.Credential, step, body string, out any) error {
	r := &exchange.Request{Method: http.MethodPost, Path: "/info", Body: []byte(body),
		Header: http.Header{"Content-Type": {"application/json"}}}
	st, b, err := d.Do(ctx, r, key)
	if err != nil {
		return fmt.Errorf("hyperliquid: %s: %w", step, err)
	}
	if st != http.StatusOK || json.Unmarshal(b, out) != nil {
		return exchange.VenueError("hyperliquid: "+step, st, b)
	}
	return nil
}

// assetIDs maps the coins of open to asset ids: perpetuals by their index
// in meta's universe, spot pairs ("PURR/USDC", "@107") as 10000 + their
// index in spotMeta's universe. spotMeta is read only when a coin is not a
// perpetual.
func assetIDs(ctx context.Context, d exchange.Doer, key *exchange.Credential, open []openOrder) (map[string]uint64, error) {
	var meta struct {
		Universe []struct {
			Name string `json:"name"`
		} `json:"universe"`
	}
	if err := infoQuery(ctx, d, key, "meta", `{"type":"meta"}`, &meta); err != nil {
		return nil, err
	}
	ids := map[string]uint64{}
	for i, u := range meta.Universe {
		ids[u.Name] = uint64(i)
	}
	if !slices.ContainsFunc(open, func(o openOrder) bool { _, ok := ids[o.Coin]; return !ok }) {
		return ids, nil
	}
	var spot struct {
		Universe []struct {
			Name  string  `json:"name"`
			Index *uint64 `json:"index"`
		} `json:"universe"`
	}
	if err := infoQuery(ctx, d, key, "spotMeta", `{"type":"spotMeta"}`, &spot); err != nil {
		return nil, err
	}
	for i, u := range spot.Universe {
		idx := uint64(i)
		if u.Index != nil {
			idx = *u.Index
		}
		if _, perp := ids[u.Name]; !perp {
			ids[u.Name] = 10000 + idx
		}
	}
	return ids, nil
}

// cancelStatuses reads a cancel answer: the orders cancelled ("success")
// and those refused (an {"error": ...} status).
func cancelStatuses(status int, body []byte) (ok, failed int, err error) {
	var r struct {
		Status   string          `json:"status"`
		Response json.RawMessage `json:"response"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Status != "ok" {
		return 0, 0, exchange.VenueError("hyperliquid: cancel orders", status, body)
	}
	var resp struct {
		Type string `json:"type"`
		Data struct {
			Statuses []json.RawMessage `json:"statuses"`
		} `json:"data"`
	}
	if json.Unmarshal(r.Response, &resp) != nil || resp.Type != "cancel" {
		return 0, 0, exchange.VenueError("hyperliquid: cancel orders", status, body)
	}
	for _, s := range resp.Data.Statuses {
		if string(s) == `"success"` {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed, nil
}
