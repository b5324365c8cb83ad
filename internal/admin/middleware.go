package admin

import (
	"context"
	"net/http"
	"strings"

	"github.com/keywarden/keywarden/internal/operator"
)

type ctxKey struct{}

type caller struct {
	p     operator.Principal
	token string
}

func from(r *http.Request) caller {
	c, _ := r.Context().Value(ctxKey{}).(caller)
	return c
}

// TOTPHeader carries a fresh TOTP code for a step-up action.
const TOTPHeader = "X-Keywarden-TOTP"

// guard authenticates and authorizes a route, and enforces step-up.
func (s *api) guard(rt route) http.Handler {
	if rt.perm == public {
		return rt.h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			writeError(w, s.log, operator.ErrUnauthorized)
			return
		}
		p, err := s.ops.Authenticate(r.Context(), tok)
		if err != nil {
			writeError(w, s.log, operator.ErrUnauthorized)
			return
		}
		if rt.perm != authenticated && !p.Can(rt.perm) {
			s.deny(r, p, rt)
			writeError(w, s.log, errForbidden)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, caller{p: p, token: tok}))
		if rt.stepUp {
			if err := s.stepUp(r); err != nil {
				writeError(w, s.log, err)
				return
			}
		}
		rt.h.ServeHTTP(w, r)
	})
}

// deny records a refused request in the audit log (best effort: the
// request is refused either way).
func (s *api) deny(r *http.Request, p operator.Principal, rt route) {
	_ = s.event(r.Context(), "denied", p.Name, map[string]string{"route": rt.method + " " + rt.path, "perm": string(rt.perm), "source": remoteAddr(r)})
}

// stepUp checks that the caller is a session that stepped up recently, or
// sent a fresh TOTP code of its operator. API tokens never pass. A code
// sent with the request is audited as POST /v1/auth/step-up's is, with the
// route, whether it was accepted or not; a refusal without a code checked
// (an API token, no code, the step-up window over) is audited too, failed
// with its cause.
func (s *api) stepUp(r *http.Request) error {
	c := from(r)
	if c.p.Token != "" {
		s.stepUpRefused(r, c.p, stepUpCauseToken)
		return operator.ErrStepUp
	}
	if code := r.Header.Get(TOTPHeader); code != "" {
		err := s.ops.StepUp(r.Context(), c.token, code)
		result := "ok"
		if err != nil {
			result = "failed"
		}
		detail := map[string]string{"result": result, "source": remoteAddr(r), "route": r.Method + " " + r.URL.Path}
		if aerr := s.event(r.Context(), "step-up", c.p.Name, detail); aerr != nil && err == nil {
			err = aerr
		}
		return err
	}
	if !s.ops.Fresh(c.p) {
		s.stepUpRefused(r, c.p, stepUpCause(c.p))
		return operator.ErrStepUp
	}
	return nil
}

// Causes of a step-up refused before any code was checked, as audited.
const (
	stepUpCauseToken   = "api token"       // API tokens never step up
	stepUpCauseNoCode  = "no code"         // the session never stepped up
	stepUpCauseExpired = "step-up expired" // its last step-up is too old
)

// stepUpCause says why a session that sent no code is not fresh.
func stepUpCause(p operator.Principal) string {
	if p.StepUp.IsZero() {
		return stepUpCauseNoCode
	}
	return stepUpCauseExpired
}

// stepUpRefused records a step-up refused before any code was checked as a
// wrong code is recorded: admin.step-up, failed, with the route, plus its
// cause (best effort: the action is refused either way). No code is
// written, even one an API token sent.
func (s *api) stepUpRefused(r *http.Request, p operator.Principal, cause string) {
	_ = s.event(r.Context(), "step-up", p.Name, map[string]string{
		"result": "failed", "cause": cause, "source": remoteAddr(r), "route": r.Method + " " + r.URL.Path})
}
