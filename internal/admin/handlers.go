package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/vault"
)

func handleLogin(s *api) http.Handler {
	type req struct {
		Name     string `json:"name"`
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		pw := []byte(in.Password)
		defer clear(pw)
		src := remoteAddr(r)
		detail := map[string]string{"source": src}
		if s.throttle.Blocked(src) {
			detail["result"] = "throttled"
			_ = s.event(r.Context(), "login", in.Name, detail)
			writeError(w, s.log, errThrottled)
			return
		}
		tok, p, err := s.ops.Login(r.Context(), in.Name, pw, in.Code)
		if err != nil {
			detail["result"] = "failed"
			if errors.Is(err, operator.ErrLocked) {
				detail["result"] = "locked"
			} else {
				s.throttle.Fail(src)
			}
			_ = s.event(r.Context(), "login", in.Name, detail)
			writeError(w, s.log, err)
			return
		}
		detail["result"] = "ok"
		if err := s.event(r.Context(), "login", p.Name, detail); err != nil {
			_ = s.ops.Logout(r.Context(), tok)
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"token": tok, "operator": p.Operator})
	})
}

func handleLogout(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := from(r)
		if err := s.ops.Logout(r.Context(), c.token); err != nil {
			writeError(w, s.log, err)
			return
		}
		_ = s.event(r.Context(), "logout", c.p.Name, nil)
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleWhoami(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := from(r).p
		writeJSON(w, http.StatusOK, map[string]any{"operator": p.Operator, "token": p.Token, "scopes": p.Scopes, "stepped_up": s.ops.Fresh(p)})
	})
}

func handleStepUp(s *api) http.Handler {
	type req struct {
		Code string `json:"code"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		c := from(r)
		err := s.ops.StepUp(r.Context(), c.token, in.Code)
		result := "ok"
		if err != nil {
			result = "failed"
		}
		if aerr := s.event(r.Context(), "step-up", c.p.Name, map[string]string{"result": result, "source": remoteAddr(r)}); aerr != nil && err == nil {
			err = aerr
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleTokenList(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := s.ops.Tokens(r.Context(), from(r).p.Name)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
}

func handleTokenCreate(s *api) http.Handler {
	type req struct {
		Name   string                `json:"name"`
		Scopes []operator.Permission `json:"scopes"`
		TTL    string                `json:"ttl"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		ttl, err := time.ParseDuration(in.TTL)
		if err != nil {
			writeError(w, s.log, badRequest("ttl: a duration such as 720h"))
			return
		}
		p := from(r).p
		if p.Token != "" {
			writeError(w, s.log, errForbidden)
			return
		}
		if err := s.event(r.Context(), "token.create", p.Name, map[string]string{"name": in.Name, "ttl": ttl.String()}); err != nil {
			writeError(w, s.log, err)
			return
		}
		tok, info, err := s.ops.CreateToken(r.Context(), p, in.Name, in.Scopes, ttl)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "info": info})
	})
}

func handleTokenRevoke(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id := from(r).p, r.PathValue("id")
		if err := s.event(r.Context(), "token.revoke", p.Name, map[string]string{"id": id}); err != nil {
			writeError(w, s.log, err)
			return
		}
		if err := s.ops.RevokeToken(r.Context(), p, id); err != nil {
			writeError(w, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleOperatorList(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := s.ops.List(r.Context())
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
}

// approved runs the k-of-n check of action on subject: nil when no rule is
// configured or the request names an approved request (which is used up),
// else it records a new pending request and answers 202 with it.
func (s *api) approved(w http.ResponseWriter, r *http.Request, action, subject string) bool {
	rule, ok := s.Approvals[action]
	if !ok {
		return true
	}
	p := from(r).p
	if id := r.URL.Query().Get("approval"); id != "" {
		if err := s.ops.Consume(r.Context(), p, id, action, subject); err != nil {
			writeError(w, s.log, err)
			return false
		}
		return true
	}
	a, err := s.ops.Request(r.Context(), p, action, subject, rule)
	if err == nil {
		err = s.event(r.Context(), "approval.request", p.Name, map[string]string{"id": a.ID, "action": action, "subject": subject})
	}
	if err != nil {
		writeError(w, s.log, err)
		return false
	}
	writeJSON(w, http.StatusAccepted, a)
	return false
}

func handleOperatorCreate(s *api) http.Handler {
	type req struct {
		Name     string        `json:"name"`
		Role     operator.Role `json:"role"`
		Keys     []string      `json:"keys"`
		Password string        `json:"password"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		pw := []byte(in.Password)
		defer clear(pw)
		p := from(r).p
		if in.Role == operator.RoleAdmin {
			if err := s.stepUp(r); err != nil {
				writeError(w, s.log, err)
				return
			}
		}
		subject := in.Name + ":" + string(in.Role)
		if !s.approved(w, r, ActionOperatorCreate, subject) {
			return
		}
		if err := s.event(r.Context(), "operator.create", p.Name, map[string]string{"name": in.Name, "role": string(in.Role)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		op, enr, err := s.ops.Create(r.Context(), operator.CreateOptions{Name: in.Name, Role: in.Role, Keys: in.Keys, Password: pw})
		if errors.Is(err, operator.ErrExists) {
			// "operator NAME already exists": the name is the caller's.
			err = &httpError{http.StatusConflict, "exists", err.Error()}
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"operator": op, "totp_url": enr.URL, "recovery_codes": enr.RecoveryCodes})
	})
}

func handleOperatorRole(s *api) http.Handler {
	type req struct {
		Role operator.Role `json:"role"`
		Keys []string      `json:"keys"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		p, name := from(r).p, r.PathValue("name")
		if in.Role == operator.RoleAdmin {
			if err := s.stepUp(r); err != nil {
				writeError(w, s.log, err)
				return
			}
		}
		if name == p.Name {
			writeError(w, s.log, badRequest("operators cannot change their own role"))
			return
		}
		if !s.approved(w, r, ActionOperatorRole, name+":"+string(in.Role)) {
			return
		}
		if err := s.event(r.Context(), "operator.role", p.Name, map[string]string{"name": name, "role": string(in.Role)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		op, err := s.ops.SetRole(r.Context(), name, in.Role, in.Keys)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, op)
	})
}

func handleOperatorDisable(s *api, disable bool) http.Handler {
	kind := "operator.enable"
	if disable {
		kind = "operator.disable"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, name := from(r).p, r.PathValue("name")
		if name == p.Name {
			writeError(w, s.log, badRequest("operators cannot disable or enable themselves"))
			return
		}
		if err := s.event(r.Context(), kind, p.Name, map[string]string{"name": name}); err != nil {
			writeError(w, s.log, err)
			return
		}
		op, err := s.ops.SetDisabled(r.Context(), name, disable)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, op)
	})
}

func handleKeyList(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, err := s.Keys.Keys(r.Context())
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		p := from(r).p
		keys = slices.DeleteFunc(keys, func(k vault.KeyInfo) bool { return !p.InScope(k.Exchange, k.Name) })
		writeJSON(w, http.StatusOK, keys)
	})
}

func handleKeyShow(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		venue, name := r.PathValue("venue"), r.PathValue("name")
		if !from(r).p.InScope(venue, name) {
			writeError(w, s.log, errNotFound)
			return
		}
		k, err := s.Keys.Key(r.Context(), venue, name)
		if err != nil {
			writeError(w, s.log, errNotFound)
			return
		}
		writeJSON(w, http.StatusOK, k)
	})
}

func handleClientList(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Clients.List(r.Context())
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		p := from(r).p
		list = slices.DeleteFunc(list, func(c client.Client) bool { return !p.InScope(c.Venue, c.Key) })
		writeJSON(w, http.StatusOK, list)
	})
}

// issued is the one response that carries a client secret: the secret the
// bot needs, shown once. It is never an exchange secret.
func issued(c *client.Issued) map[string]any {
	out := map[string]any{"client": c.Client, "secret": string(c.Secret)}
	if len(c.Passphrase) > 0 {
		out["passphrase"] = string(c.Passphrase)
	}
	return out
}

func handleClientIssue(s *api) http.Handler {
	type req struct {
		Venue        string   `json:"venue"`
		Key          string   `json:"key"`
		Policy       string   `json:"policy"`
		TTL          string   `json:"ttl"`
		Label        string   `json:"label"`
		CIDRs        []string `json:"cidrs"`
		Kind         string   `json:"kind"`
		PublicKeyPEM string   `json:"public_key_pem"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		p := from(r).p
		if !p.InScope(in.Venue, in.Key) {
			writeError(w, s.log, errForbidden)
			return
		}
		defs, err := s.Policies.Definitions(r.Context())
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		if _, ok := defs[in.Policy]; !ok {
			writeError(w, s.log, badRequest("unknown policy %q", in.Policy))
			return
		}
		ttl, err := time.ParseDuration(in.TTL)
		if err != nil || ttl <= 0 {
			writeError(w, s.log, badRequest("ttl: a positive duration such as 720h"))
			return
		}
		o := client.IssueOptions{Venue: in.Venue, Key: in.Key, Policy: in.Policy, TTL: ttl, Label: in.Label,
			Kind: exchange.KeyKind(in.Kind), PublicKeyPEM: in.PublicKeyPEM, Format: s.Format(in.Venue)}
		if o.Kind == "" {
			o.Kind = exchange.KeyHMAC
		}
		for _, c := range in.CIDRs {
			pf, err := netip.ParsePrefix(c)
			if err != nil {
				writeError(w, s.log, badRequest("cidr %q: not a prefix", c))
				return
			}
			o.CIDRs = append(o.CIDRs, pf)
		}
		if err := s.event(r.Context(), "client.issue", p.Name, map[string]string{"venue": in.Venue, "key": in.Key, "policy": in.Policy, "ttl": ttl.String()}); err != nil {
			writeError(w, s.log, err)
			return
		}
		c, err := s.Clients.Issue(r.Context(), o)
		if err != nil {
			writeError(w, s.log, badRequest("issue: %v", err))
			return
		}
		defer c.Secret.Zero()
		defer c.Passphrase.Zero()
		writeJSON(w, http.StatusCreated, issued(c))
	})
}

// scopedClient finds the client venue/id and checks the caller's key scope.
func (s *api) scopedClient(r *http.Request) (client.Client, error) {
	c, err := s.Clients.Find(r.Context(), r.PathValue("id"))
	if err != nil || c.Venue != r.PathValue("venue") {
		return client.Client{}, errNotFound
	}
	if !from(r).p.InScope(c.Venue, c.Key) {
		return client.Client{}, errForbidden
	}
	return c, nil
}

func handleClientRevoke(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.scopedClient(r)
		if err == nil {
			err = s.event(r.Context(), "client.revoke", from(r).p.Name, map[string]string{"venue": c.Venue, "id": c.ID, "key": c.Key})
		}
		if err == nil {
			err = s.Clients.Revoke(r.Context(), c.Venue, c.ID)
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleClientRotate(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.scopedClient(r)
		if err == nil {
			err = s.event(r.Context(), "client.rotate", from(r).p.Name, map[string]string{"venue": c.Venue, "id": c.ID, "key": c.Key})
		}
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		out, err := s.Clients.Rotate(r.Context(), c.Venue, c.ID, s.Format(c.Venue), "")
		if err != nil {
			writeError(w, s.log, badRequest("rotate: %v", err))
			return
		}
		defer out.Secret.Zero()
		defer out.Passphrase.Zero()
		writeJSON(w, http.StatusCreated, issued(out))
	})
}

const maxAuditResults = 1000

func handleAuditSearch(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := audit.Filter{Client: q.Get("client"), Key: q.Get("key"), Venue: q.Get("venue"), Scope: q.Get("scope"),
			Decision: q.Get("decision"), RequestID: q.Get("request_id")}
		for _, t := range q["type"] {
			f.Types = append(f.Types, audit.Type(t))
		}
		for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
			if v := q.Get(name); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					writeError(w, s.log, badRequest("%s: an RFC 3339 time", name))
					return
				}
				*dst = t
			}
		}
		limit := 100
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxAuditResults {
				writeError(w, s.log, badRequest("limit: 1 to %d", maxAuditResults))
				return
			}
			limit = n
		}
		out := []audit.Record{}
		for rec, err := range audit.Search(s.AuditDir, f) {
			if err != nil {
				writeError(w, s.log, fmt.Errorf("audit search: %w", err))
				return
			}
			out = append(out, rec)
			if len(out) >= limit {
				break
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func handleGatewayStatus(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, detail := "running", ""
		if err := s.Gateway.Healthy(); err != nil {
			status, detail = "stopped", err.Error()
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": status, "detail": detail})
	})
}

func handleGatewayResume(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.approved(w, r, ActionGatewayResume, "gateway") {
			return
		}
		if err := s.event(r.Context(), "gateway.resume", from(r).p.Name, map[string]string{"source": remoteAddr(r)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		s.Gateway.Resume()
		writeJSON(w, http.StatusOK, map[string]string{"status": "running"})
	})
}

func handleApprovalList(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list, err := s.ops.Approvals(r.Context())
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
}

func handleApprovalDecide(s *api, approve bool) http.Handler {
	kind := "approval.reject"
	if approve {
		kind = "approval.approve"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id := from(r).p, r.PathValue("id")
		if err := s.event(r.Context(), kind, p.Name, map[string]string{"id": id}); err != nil {
			writeError(w, s.log, err)
			return
		}
		a, err := s.ops.Decide(r.Context(), p, id, approve)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, a)
	})
}
