package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// UnwrapPath is where the gateway listener answers unwrap requests.
const UnwrapPath = "/v1/unwrap"

// UnwrapOptions configure UnwrapHandler.
type UnwrapOptions struct {
	// Audit makes a record of each unwrap durable: kind is
	// "client.unwrap", "client.unwrap_misuse" or "client.unwrap_invalid".
	// A credential is handed out only after its record is durable.
	Audit func(ctx context.Context, kind string, detail map[string]string) error
	// Misuse is told about a reused or expired token, which revoked its
	// credential: raise a critical alert (the secret may have been read
	// on its way).
	Misuse func(m *WrapMisuse, source string)
	Logger *slog.Logger
}

// UnwrapResponse is the credential an unwrap returns, once. The secret
// fields are plain strings on purpose: this answer is where they are shown.
type UnwrapResponse struct {
	Venue      string    `json:"venue"`
	Key        string    `json:"key"`
	Policy     string    `json:"policy"`
	ID         string    `json:"api_key"`
	Secret     string    `json:"secret"`
	Passphrase string    `json:"passphrase,omitempty"`
	Expires    time.Time `json:"expires"`
}

// UnwrapHandler serves POST UnwrapPath with {"token": "..."} in the body
// (never in the URL, so it stays out of access logs): 200 with the
// credential the first time; 410 for a reused or expired token (the
// credential is revoked); 401 for an unknown one.
func UnwrapHandler(reg *Registry, o UnwrapOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeUnwrapError(w, http.StatusMethodNotAllowed, "use POST with the token in a JSON body")
			return
		}
		if r.URL.RawQuery != "" {
			writeUnwrapError(w, http.StatusBadRequest, "the token goes in the body, not the URL")
			return
		}
		var in struct {
			Token string `json:"token"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil || in.Token == "" {
			writeUnwrapError(w, http.StatusBadRequest, `body must be {"token": "kwwrap_..."}`)
			return
		}
		source := peer(r)
		iss, err := reg.Unwrap(r.Context(), in.Token)
		var m *WrapMisuse
		switch {
		case errors.As(err, &m):
			if o.Misuse != nil {
				o.Misuse(m, source)
			}
			o.audit(r.Context(), "client.unwrap_misuse", map[string]string{"venue": m.Venue, "client": m.ID,
				"reason": m.Err.Error(), "revoked": boolText(m.Revoked), "source": source})
			writeUnwrapError(w, http.StatusGone, "this wrapping token was already used or has expired; the credential is revoked and an alert raised: ask for a new one")
			return
		case errors.Is(err, ErrWrapInvalid):
			o.audit(r.Context(), "client.unwrap_invalid", map[string]string{"source": source})
			writeUnwrapError(w, http.StatusUnauthorized, "unknown wrapping token")
			return
		case err != nil:
			o.Logger.Error("unwrap failed", "err", err)
			writeUnwrapError(w, http.StatusServiceUnavailable, "unwrap unavailable")
			return
		}
		defer iss.Secret.Zero()
		defer iss.Passphrase.Zero()
		if err := o.audit(r.Context(), "client.unwrap", map[string]string{"venue": iss.Venue, "client": iss.ID, "source": source}); err != nil {
			// No record, no secret. The token is spent, so the credential
			// can never be handed out: revoke it.
			_ = reg.Revoke(context.WithoutCancel(r.Context()), iss.Venue, iss.ID)
			writeUnwrapError(w, http.StatusServiceUnavailable, "audit log unavailable; the credential was revoked: ask for a new one")
			return
		}
		out := UnwrapResponse{Venue: iss.Venue, Key: iss.Key, Policy: iss.Policy, ID: iss.ID,
			Secret: string(iss.Secret), Passphrase: string(iss.Passphrase), Expires: iss.Expires}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}

func (o UnwrapOptions) audit(ctx context.Context, kind string, detail map[string]string) error {
	if o.Audit == nil {
		return nil
	}
	err := o.Audit(context.WithoutCancel(ctx), kind, detail)
	if err != nil {
		o.Logger.Error("audit of an unwrap failed", "kind", kind, "err", err)
	}
	return err
}

// WithUnwrap serves UnwrapPath with unwrap and everything else with next
// (the gateway, whose venue routes never start with /v1/).
func WithUnwrap(next, unwrap http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == UnwrapPath {
			unwrap.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeUnwrapError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func peer(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return ap.Addr().Unmap().String()
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
