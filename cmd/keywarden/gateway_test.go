package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/incident"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// mapSecrets keeps operator TOTP seeds in memory.
type mapSecrets struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *mapSecrets) PutSecret(_ context.Context, kind, id string, secret []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[kind+"/"+id] = append([]byte(nil), secret...)
	return nil
}

func (s *mapSecrets) Secret(_ context.Context, kind, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[kind+"/"+id]
	if !ok {
		return nil, errors.New("no such secret")
	}
	return append([]byte(nil), b...), nil
}

// totpSeed returns the TOTP seed of the otpauth:// URL an enrollment
// printed in out.
func totpSeed(t *testing.T, out string) []byte {
	t.Helper()
	seed, err := operator.SeedFromURL(out)
	if err != nil {
		t.Fatalf("no TOTP seed in the enrollment output (%v):\n%s", err, out)
	}
	return seed
}

// notACode returns a six-digit code that is not seed's code for any step
// of the window around now.
func notACode(seed []byte) string {
	now := time.Now()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if c != operator.Code(seed, now.Add(-30*time.Second)) && c != operator.Code(seed, now) && c != operator.Code(seed, now.Add(30*time.Second)) {
			return c
		}
	}
	panic("unreachable: four distinct codes cannot all be in a three-step window")
}

// TestResumeAuthorize: leaving a stop needs an enabled operator with
// gateway control and a fresh TOTP code of theirs, used once; a vault
// without operators refuses and says how to enrol one; failures count
// towards the lockout.
func TestResumeAuthorize(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	secrets := &mapSecrets{m: map[string][]byte{}}
	ops, err := operator.New(operator.Options{Store: st, Secrets: secrets, KDF: operator.MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	z := resumeAuthorizer{ops: ops}

	_, err = z.authorize(ctx, resumeRequest{Operator: "root", TOTP: "123456", Reason: "drill over"})
	if !errors.Is(err, errResumeNoOperator) || !strings.Contains(err.Error(), "keywarden operator first-admin") {
		t.Fatalf("resume without any operator = %v, want the enrol message", err)
	}

	seeds := map[string][]byte{}
	for _, o := range []struct {
		name string
		role operator.Role
	}{{"root", operator.RoleAdmin}, {"sec", operator.RoleSecurity}, {"aud", operator.RoleAuditor}, {"ops", operator.RoleTraderOps}, {"gone", operator.RoleAdmin}} {
		_, enr, err := ops.Create(ctx, operator.CreateOptions{Name: o.name, Role: o.role, Password: []byte("a long enough password")})
		if err != nil {
			t.Fatal(err)
		}
		seeds[o.name] = enr.Seed
	}
	if _, err := ops.SetDisabled(ctx, "gone", true); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code := func(name string) string { return operator.Code(seeds[name], now) }
	rootCode := code("root")

	tests := []struct {
		name    string
		req     resumeRequest
		want    string // actor, or the error's text
		wantErr bool
	}{
		{"no reason", resumeRequest{Operator: "root", TOTP: rootCode}, "a reason is required", true},
		{"no operator", resumeRequest{Reason: "r"}, "an operator and their fresh TOTP code are required", true},
		{"no code", resumeRequest{Operator: "root", Reason: "r"}, `operator "root" sent no TOTP code`, true},
		{"wrong code", resumeRequest{Operator: "root", TOTP: notACode(seeds["root"]), Reason: "r"}, "not a fresh TOTP code", true},
		{"another operator's code", resumeRequest{Operator: "root", TOTP: code("sec"), Reason: "r"}, "not a fresh TOTP code", true},
		{"unknown operator", resumeRequest{Operator: "nobody", TOTP: rootCode, Reason: "r"}, `step-up failed for operator "nobody"`, true},
		{"auditor", resumeRequest{Operator: "aud", TOTP: code("aud"), Reason: "r"}, `operator "aud" may not resume the gateway`, true},
		{"trader-ops", resumeRequest{Operator: "ops", TOTP: code("ops"), Reason: "r"}, `operator "ops" may not resume the gateway`, true},
		{"disabled admin", resumeRequest{Operator: "gone", TOTP: code("gone"), Reason: "r"}, `operator "gone" may not resume the gateway`, true},
		{"admin", resumeRequest{Operator: "root", TOTP: rootCode, Reason: "r"}, "root (control-socket)", false},
		{"admin, same code again", resumeRequest{Operator: "root", TOTP: rootCode, Reason: "r"}, "already used", true},
		{"security", resumeRequest{Operator: "sec", TOTP: code("sec"), Reason: "r"}, "sec (control-socket)", false},
	}
	for _, tt := range tests {
		actor, err := z.authorize(ctx, tt.req)
		switch {
		case tt.wantErr && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: authorize = %q, %v; want an error containing %q", tt.name, actor, err, tt.want)
		case !tt.wantErr && (err != nil || actor != tt.want):
			t.Errorf("%s: authorize = %q, %v; want %q", tt.name, actor, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.req.TOTP) && tt.req.TOTP != "" {
			t.Errorf("%s: the error shows the code: %v", tt.name, err)
		}
	}

	// The lockout applies: after five failures in a row even a fresh code
	// is refused.
	for range 5 {
		if _, err := z.authorize(ctx, resumeRequest{Operator: "sec", TOTP: notACode(seeds["sec"]), Reason: "r"}); err == nil {
			t.Fatal("a wrong code passed")
		}
	}
	_, err = z.authorize(ctx, resumeRequest{Operator: "sec", TOTP: operator.Code(seeds["sec"], now.Add(30*time.Second)), Reason: "r"})
	if !errors.Is(err, operator.ErrLocked) {
		t.Errorf("resume by a locked-out operator = %v, want %v", err, operator.ErrLocked)
	}
}

// TestResumeAuthorizeConcurrentReplay: one code sent twice at once lifts
// the stop at most once.
func TestResumeAuthorizeConcurrentReplay(t *testing.T) {
	ctx := context.Background()
	ops, err := operator.New(operator.Options{Store: memory.New(), Secrets: &mapSecrets{m: map[string][]byte{}}, KDF: operator.MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	_, enr, err := ops.Create(ctx, operator.CreateOptions{Name: "root", Role: operator.RoleAdmin, Password: []byte("a long enough password")})
	if err != nil {
		t.Fatal(err)
	}
	z := resumeAuthorizer{ops: ops}
	req := resumeRequest{Operator: "root", TOTP: operator.Code(enr.Seed, time.Now()), Reason: "r"}
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range n {
		wg.Go(func() {
			if _, err := z.authorize(ctx, req); err == nil {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if passed != 1 {
		t.Errorf("%d of %d concurrent resumes with one code passed, want 1", passed, n)
	}
}

// TestGatewayResumeNeedsTOTP runs keywarden serve: a panic and a stop need
// no second factor; leaving them over the control socket needs the
// operator's fresh TOTP code. A resume without a reason, without an
// operator, without a code, with a wrong code, with another operator's name
// or with a used code is refused, the gateway stays stopped, and every
// attempt is audited (never the code); a valid code resumes and is
// audited with the operator's name; the lockout applies.
func TestGatewayResumeNeedsTOTP(t *testing.T) {
	e := startRespServe(t, "")
	bot := e.issue()
	if code, body := e.order(bot, "1"); code != 200 {
		t.Fatalf("order before the panic = %d %s", code, body)
	}
	stopped := func(when string) {
		t.Helper()
		if code, body := e.order(bot, "1"); code != 503 {
			t.Fatalf("order %s = %d %s, want 503", when, code, body)
		}
	}
	running := func(when string) {
		t.Helper()
		if code, body := e.order(bot, "1"); code != 200 {
			t.Fatalf("order %s = %d %s, want 200", when, code, body)
		}
	}

	// Entering a panic asks for nothing.
	if out := e.c.ok("", "panic", "--all", "--reason", "suspected leak"); !strings.Contains(out, "gateway stopped") {
		t.Fatalf("panic --all: %s", out)
	}
	stopped("after panic --all")

	resume := func(args ...string) []string { return append([]string{"gateway", "resume"}, args...) }
	wrong := notACode(e.seed)
	e.c.fails("a reason is required", "", resume()...)
	e.c.fails("an operator and their fresh TOTP code are required", "", resume("--reason", "contained")...)
	e.c.fails(`operator "root" sent no TOTP code`, "\n", resume("--operator", "root", "--reason", "contained")...)
	e.c.fails("not a fresh TOTP code", wrong+"\n", resume("--operator", "root", "--reason", "contained")...)
	e.c.fails(`step-up failed for operator "nobody"`, operator.Code(e.seed, time.Now())+"\n", resume("--operator", "nobody", "--reason", "contained")...)
	stopped("after refused resumes")

	first := operator.Code(e.seed, time.Now())
	if out := e.c.ok(first+"\n", resume("--operator", "root", "--reason", "leak contained")...); !strings.Contains(out, "gateway running (resumed by root (control-socket))") {
		t.Errorf("resume: %s", out)
	}
	running("after the resume")
	e.eventually("the resume on the panic's incident", func() bool {
		_, ok := e.incidentEntry(incident.KindResume, "gateway resumed by root (control-socket)")
		return ok
	})

	// A stop needs nothing either; the used code cannot lift it again.
	if out := e.c.ok("", "gateway", "stop"); !strings.Contains(out, "gateway stopped") {
		t.Errorf("gateway stop: %s", out)
	}
	stopped("after gateway stop")
	e.c.fails("already used", first+"\n", resume("--operator", "root", "--reason", "again")...)
	stopped("after a replayed code")
	if out := e.c.ok(operator.Code(e.seed, time.Now().Add(30*time.Second))+"\n", resume("--operator", "root", "--reason", "maintenance done")...); !strings.Contains(out, "gateway running") {
		t.Errorf("second resume: %s", out)
	}
	running("after the second resume")

	// An old client's empty request is refused too.
	e.c.ok("", "gateway", "stop")
	s := dialControl(filepath.Join(e.c.dir, "data"))
	if s == nil {
		t.Fatal("no control socket")
	}
	var out map[string]string
	if err := s.call(context.Background(), "POST", "/v1/gateway/resume", struct{}{}, &out); err == nil || !strings.Contains(err.Error(), "a reason is required") {
		t.Errorf("empty resume request = %v, want a refusal", err)
	}
	stopped("after an empty resume request")

	// Lockout: five failures in a row lock the operator out, a fresh code
	// included.
	for range 5 {
		e.c.fails("not a fresh TOTP code", notACode(e.seed)+"\n", resume("--operator", "root", "--reason", "guessing")...)
	}
	e.c.fails("account locked", operator.Code(e.seed, time.Now().Add(30*time.Second))+"\n", resume("--operator", "root", "--reason", "locked")...)
	stopped("while the operator is locked out")

	// The audit log has every attempt, with the operator's name, never a
	// code.
	if evs := e.events("gateway.resume"); len(evs) != 2 || evs[0].Actor != "root (control-socket)" || evs[0].Detail["reason"] != "leak contained" ||
		evs[1].Detail["reason"] != "maintenance done" || evs[0].Detail["was_stopped"] != "true" {
		t.Errorf("gateway.resume audit events = %+v", evs)
	}
	refused := e.events("gateway.resume_refused")
	wantErrs := []string{"a reason is required", "an operator and their fresh TOTP code", "sent no TOTP code", "not a fresh TOTP code",
		`operator "nobody"`, "already used", "a reason is required",
		"not a fresh TOTP code", "not a fresh TOTP code", "not a fresh TOTP code", "not a fresh TOTP code", "not a fresh TOTP code", "account locked"}
	if len(refused) != len(wantErrs) {
		t.Fatalf("%d gateway.resume_refused audit events, want %d: %+v", len(refused), len(wantErrs), refused)
	}
	for i, ev := range refused {
		if !strings.Contains(ev.Detail["error"], wantErrs[i]) {
			t.Errorf("refusal %d: error %q, want it to contain %q", i, ev.Detail["error"], wantErrs[i])
		}
		for k, v := range ev.Detail {
			if k != "error" && k != "reason" && regexp.MustCompile(`\b\d{6}\b`).MatchString(v) {
				t.Errorf("refusal %d: %s = %q looks like a code", i, k, v)
			}
		}
		if strings.Contains(ev.Detail["error"], first) || strings.Contains(ev.Detail["error"], wrong) {
			t.Errorf("refusal %d shows a code: %q", i, ev.Detail["error"])
		}
	}
	if refused[3].Detail["operator"] != "root" || refused[3].Detail["totp_sent"] != "true" || refused[2].Detail["totp_sent"] != "false" {
		t.Errorf("refusal records: %+v %+v", refused[2], refused[3])
	}
	if evs := e.events("gateway.stop"); len(evs) != 2 || evs[0].Actor != actorControl {
		t.Errorf("gateway.stop audit events = %+v", evs)
	}
	if evs := e.events("panic"); len(evs) != 1 || evs[0].Detail["stopped"] != "true" {
		t.Errorf("panic audit events = %+v", evs)
	}
}

// recordingAudit keeps the records appended to it, or fails every append
// with err.
type recordingAudit struct {
	mu   sync.Mutex
	recs []audit.Record
	err  error
}

func (r *recordingAudit) Append(_ context.Context, rec audit.Record) (audit.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return audit.Receipt{}, r.err
	}
	r.recs = append(r.recs, rec)
	return audit.Receipt{}, nil
}

func (r *recordingAudit) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		out = append(out, rec.Event.Kind)
	}
	return out
}

// TestResumeHandlerAuditFirst: the control socket's stop acts even when
// the audit log fails (and says so); a resume with a valid code is
// refused while the audit log cannot record it, and the gateway stays
// stopped; with the log back, the resume is recorded before the switch
// moves, and a malformed request is refused and recorded.
func TestResumeHandlerAuditFirst(t *testing.T) {
	ctx := context.Background()
	ops, err := operator.New(operator.Options{Store: memory.New(), Secrets: &mapSecrets{m: map[string][]byte{}}, KDF: operator.MinKDF()})
	if err != nil {
		t.Fatal(err)
	}
	_, enr, err := ops.Create(ctx, operator.CreateOptions{Name: "root", Role: operator.RoleAdmin, Password: []byte("a long enough password")})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{log: slog.New(slog.DiscardHandler)}
	z := resumeAuthorizer{ops: ops}
	sw := &fakeSwitch{}
	post := func(h http.HandlerFunc, body string) (int, string) {
		t.Helper()
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest("POST", "/v1/gateway/x", strings.NewReader(body)))
		return w.Code, w.Body.String()
	}

	broken := &recordingAudit{err: errors.New("disk full")}
	if code, body := post(a.handleStop(sw, broken, noPeers{}), `{}`); code != http.StatusBadRequest || !strings.Contains(body, "gateway stopped, but the audit record failed") {
		t.Errorf("stop with a failing audit log = %d %s, want 400 naming the audit failure", code, body)
	}
	if !sw.Stopped() {
		t.Fatal("a stop did not act because the audit log failed")
	}
	now := time.Now()
	code, body := post(a.handleResume(sw, broken, noPeers{}, z), `{"operator":"root","totp":"`+operator.Code(enr.Seed, now)+`","reason":"r"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "the gateway stays stopped") {
		t.Errorf("resume with a failing audit log = %d %s, want 400", code, body)
	}
	if !sw.Stopped() {
		t.Fatal("resumed without an audit record")
	}

	rec := &recordingAudit{}
	h := a.handleResume(sw, rec, noPeers{}, z)
	if code, _ := post(h, `{"operator":"root","totp":"1","extra":true}`); code != http.StatusBadRequest || !sw.Stopped() {
		t.Errorf("malformed resume = %d, stopped %v; want 400 and still stopped", code, sw.Stopped())
	}
	next := operator.Code(enr.Seed, now.Add(30*time.Second))
	if code, body := post(h, `{"operator":"root","totp":"`+next+`","reason":"all clear"}`); code != http.StatusOK || !strings.Contains(body, `"by":"root (control-socket)"`) {
		t.Errorf("resume = %d %s, want 200 by root", code, body)
	}
	if sw.Stopped() {
		t.Error("still stopped after a valid resume")
	}
	if got, want := rec.kinds(), []string{"gateway.resume_refused", "gateway.resume"}; !slices.Equal(got, want) {
		t.Errorf("audit records = %v, want %v", got, want)
	}
	for _, r := range rec.recs {
		for k, v := range r.Event.Detail {
			if strings.Contains(v, next) {
				t.Errorf("%s record: %s holds the code", r.Event.Kind, k)
			}
		}
	}
	if r := rec.recs[1].Event; r.Actor != "root (control-socket)" || r.Detail["reason"] != "all clear" || r.Detail["was_stopped"] != "true" {
		t.Errorf("gateway.resume record = %+v", r)
	}
}
