package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUnwrapHandler: POST /v1/unwrap answers the credential once, after its
// audit record; a second POST answers 410, revokes the credential, raises
// the misuse and records it; an unknown token answers 401; the token is
// never accepted in the URL; the gateway behind WithUnwrap gets every other
// path.
func TestUnwrapHandler(t *testing.T) {
	ctx := context.Background()
	r, _, _, _ := newRegistry(t)
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.Wrap(ctx, "binance", iss.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var kinds []string
	var misuses []*WrapMisuse
	var auditErr error
	h := UnwrapHandler(r, UnwrapOptions{
		Audit: func(ctx context.Context, kind string, d map[string]string) error {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range d {
				if strings.Contains(v, token) || strings.Contains(v, string(iss.Secret)) {
					t.Errorf("audit detail of %s holds the token or the secret", kind)
				}
			}
			kinds = append(kinds, kind)
			return auditErr
		},
		Misuse: func(m *WrapMisuse, source string) {
			mu.Lock()
			defer mu.Unlock()
			misuses = append(misuses, m)
		},
	})
	gwHits := 0
	srv := httptest.NewServer(WithUnwrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gwHits++ }), h))
	defer srv.Close()
	post := func(body string) (int, map[string]string) {
		t.Helper()
		resp, err := http.Post(srv.URL+UnwrapPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := post(`{"token":"kwwrap_` + strings.Repeat("x", 48) + `"}`); code != http.StatusUnauthorized {
		t.Errorf("unknown token = %d, want 401", code)
	}
	if code, _ := post(`not json`); code != http.StatusBadRequest {
		t.Errorf("malformed body = %d, want 400", code)
	}
	resp, err := http.Post(srv.URL+UnwrapPath+"?token="+token, "application/json", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("token in the URL = %d, want 400", resp.StatusCode)
	}
	code, out := post(`{"token":"` + token + `"}`)
	if code != http.StatusOK || out["api_key"] != iss.ID || out["secret"] != string(iss.Secret) || out["policy"] != "trader" {
		t.Fatalf("first unwrap = %d %v, want 200 with the credential", code, out["api_key"])
	}
	code, out = post(`{"token":"` + token + `"}`)
	if code != http.StatusGone || out["secret"] != "" {
		t.Fatalf("second unwrap = %d, want 410 without a secret", code)
	}
	if _, err := r.Lookup("binance", iss.ID); err == nil {
		t.Errorf("the credential still works after a second unwrap")
	}
	mu.Lock()
	if len(misuses) != 1 || misuses[0].ID != iss.ID || !errors.Is(misuses[0], ErrWrapUsed) {
		t.Errorf("misuses = %v, want one reuse of %s", misuses, iss.ID)
	}
	want := "client.unwrap_invalid,client.unwrap,client.unwrap_misuse"
	if strings.Join(kinds, ",") != want {
		t.Errorf("audit kinds = %v, want %s", kinds, want)
	}
	mu.Unlock()
	if resp, err := http.Get(srv.URL + "/binance/api/v3/account"); err == nil {
		resp.Body.Close()
	}
	if resp, err := http.Get(srv.URL + UnwrapPath); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s = %d, want 405", UnwrapPath, resp.StatusCode)
		}
	}
	if gwHits != 1 {
		t.Errorf("the gateway got %d requests, want 1", gwHits)
	}

	// No audit record, no secret: the spent credential is revoked.
	iss2, _ := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "trader", TTL: time.Hour})
	token2, _ := r.Wrap(ctx, "binance", iss2.ID, time.Minute)
	mu.Lock()
	auditErr = errors.New("disk full")
	mu.Unlock()
	if code, out := post(`{"token":"` + token2 + `"}`); code != http.StatusServiceUnavailable || out["secret"] != "" {
		t.Errorf("unwrap with the audit log down = %d, want 503 without a secret", code)
	}
	if _, err := r.Lookup("binance", iss2.ID); err == nil {
		t.Errorf("a credential whose unwrap was not recorded still works")
	}
}
