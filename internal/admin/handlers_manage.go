package admin

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/posture"
)

var errNotOffered = &httpError{http.StatusNotImplemented, "not_offered", "this server does not offer that action"}

func handlePolicyList(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defs, err := s.Policies.Definitions(r.Context())
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		names := []string{}
		for n := range defs {
			names = append(names, n)
		}
		slices.Sort(names)
		writeJSON(w, http.StatusOK, names)
	})
}

func handlePolicyShow(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		defs, err := s.Policies.Definitions(r.Context())
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		d, ok := defs[name]
		if !ok {
			writeError(w, s.log, errNotFound)
			return
		}
		if r.URL.Query().Get("format") == "toml" {
			w.Header().Set("Content-Type", "application/toml")
			_, _ = w.Write([]byte(policy.FormatDefinition(name, d)))
			return
		}
		src, err := s.Policies.Source(r.Context(), name)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		w.Header().Set("X-Keywarden-Policy-Source", src)
		writeJSON(w, http.StatusOK, d)
	})
}

// handlePolicyPut creates or replaces a policy from the text of a policy
// file holding its one [policy.NAME] table. Changes that widen what clients
// may do need step-up; enabling withdraw and adding withdrawal addresses
// can also need approvals. ?dry_run=true answers the change without
// making it.
func handlePolicyPut(s *api) http.Handler {
	type req struct {
		TOML string `json:"toml"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		name := r.PathValue("name")
		d, err := policy.ParseDefinition(name, []byte(in.TOML))
		if err != nil {
			writeError(w, s.log, badRequest("policy %s: %v", name, err))
			return
		}
		s.changePolicy(w, r, name, &d)
	})
}

func handlePolicyDelete(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.changePolicy(w, r, r.PathValue("name"), nil)
	})
}

func (s *api) changePolicy(w http.ResponseWriter, r *http.Request, name string, d *policy.Definition) {
	c, err := s.Policies.Prepare(r.Context(), name, d)
	switch {
	case errors.Is(err, policy.ErrNoPolicy):
		writeError(w, s.log, errNotFound)
		return
	case err != nil:
		writeError(w, s.log, badRequest("policy %s: %v", name, err))
		return
	}
	if dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run")); dry {
		writeJSON(w, http.StatusOK, map[string]any{"change": c, "step_up": c.Widens(), "applied": false})
		return
	}
	if c.Widens() {
		if err := s.stepUp(r); err != nil {
			writeError(w, s.log, err)
			return
		}
	}
	// An approval covers exactly this change: the digest of the new text.
	var actions []string
	if c.EnablesWithdraw {
		actions = append(actions, ActionPolicyWithdraw)
	}
	if len(c.AddedAddresses) > 0 {
		actions = append(actions, ActionPolicyAddress)
	}
	summary := c.Diff
	for _, x := range c.Raised {
		summary += "widens: " + x + "\n"
	}
	if !s.approvedAll(w, r, actions, name+"@"+c.Digest, summary) {
		return
	}
	kind := "policy.update"
	switch {
	case c.Created():
		kind = "policy.create"
	case c.Deleted():
		kind = "policy.delete"
	}
	detail := map[string]string{"policy": name, "diff": c.Diff, "digest": c.Digest, "source": remoteAddr(r)}
	if len(c.Raised) > 0 {
		detail["raised"] = strings.Join(c.Raised, "; ")
	}
	if c.EnablesWithdraw {
		detail["enables_withdraw"] = "true"
	}
	if len(c.AddedAddresses) > 0 {
		var addrs []string
		for _, a := range c.AddedAddresses {
			addrs = append(addrs, a.Asset+" "+a.Network+" "+a.Address)
		}
		detail["added_addresses"] = strings.Join(addrs, "; ")
	}
	if err := s.event(r.Context(), kind, from(r).p.Name, detail); err != nil {
		writeError(w, s.log, err)
		return
	}
	compiled, err := s.Policies.Apply(r.Context(), c, from(r).p.Name)
	if errors.Is(err, policy.ErrConflict) {
		writeError(w, s.log, &httpError{http.StatusConflict, "conflict", err.Error()})
		return
	} else if err != nil {
		writeError(w, s.log, err)
		return
	}
	if s.SetPolicies != nil {
		s.SetPolicies(compiled)
	}
	writeJSON(w, http.StatusOK, map[string]any{"change": c, "step_up": c.Widens(), "applied": true})
}

// handleAuditExport gives the audit log's checkpoint public key and its
// signed checkpoints, for a witness outside keywarden.
func handleAuditExport(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.AuditKey) == 0 {
			writeError(w, s.log, errNotOffered)
			return
		}
		if err := s.event(r.Context(), "audit.export", from(r).p.Name, map[string]string{"source": remoteAddr(r)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		var buf bytes.Buffer
		if err := audit.ExportCheckpoints(s.AuditDir, &buf); err != nil {
			writeError(w, s.log, err)
			return
		}
		cps, err := exportedCheckpoints(buf.Bytes(), s.AuditKey)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"public_key": base64.StdEncoding.EncodeToString(s.AuditKey),
			"checkpoints": cps, "witness": buf.String()})
	})
}

// handleSealRotate adds a keyring term: new secrets are sealed under it.
func handleSealRotate(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Seal == nil {
			writeError(w, s.log, errNotOffered)
			return
		}
		if err := s.event(r.Context(), "seal.rotate", from(r).p.Name, map[string]string{"source": remoteAddr(r)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		if err := s.Seal.Rotate(r.Context()); err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "rotated"})
	})
}

// handleSealRekey replaces the seal: a new passphrase, or new unseal
// shares returned once.
func handleSealRekey(s *api) http.Handler {
	type req struct {
		Passphrase string `json:"passphrase"`
		Shares     int    `json:"shares"`
		Threshold  int    `json:"threshold"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Seal == nil {
			writeError(w, s.log, errNotOffered)
			return
		}
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		pass := []byte(in.Passphrase)
		defer clear(pass)
		kind := "passphrase"
		switch {
		case len(pass) > 0 && in.Shares == 0 && in.Threshold == 0:
		case len(pass) == 0 && in.Shares > 0 && in.Threshold > 0:
			kind = "shares"
		default:
			writeError(w, s.log, badRequest("give either passphrase, or shares and threshold"))
			return
		}
		detail := map[string]string{"seal": kind, "source": remoteAddr(r)}
		if kind == "shares" {
			detail["shares"], detail["threshold"] = strconv.Itoa(in.Shares), strconv.Itoa(in.Threshold)
		}
		if err := s.event(r.Context(), "seal.rekey", from(r).p.Name, detail); err != nil {
			writeError(w, s.log, err)
			return
		}
		shares, err := s.Seal.Rekey(r.Context(), pass, in.Shares, in.Threshold)
		if err != nil {
			writeError(w, s.log, badRequest("rekey: %v", err))
			return
		}
		if shares == nil {
			shares = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"seal": kind, "shares": shares})
	})
}

func handleKeyRevoke(s *api) http.Handler {
	type req struct {
		Reason  string `json:"reason"`
		AtVenue bool   `json:"at_venue"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.KeyLifecycle == nil {
			writeError(w, s.log, errNotOffered)
			return
		}
		var in req
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		venue, name := r.PathValue("venue"), r.PathValue("name")
		if !from(r).p.InScope(venue, name) {
			writeError(w, s.log, errNotFound)
			return
		}
		if strings.TrimSpace(in.Reason) == "" {
			writeError(w, s.log, badRequest("reason: say why the key is revoked"))
			return
		}
		if _, err := s.Keys.Key(r.Context(), venue, name); err != nil {
			writeError(w, s.log, errNotFound)
			return
		}
		if err := s.event(r.Context(), "key.revoke", from(r).p.Name, map[string]string{"key": venue + "/" + name,
			"reason": in.Reason, "at_venue": strconv.FormatBool(in.AtVenue), "source": remoteAddr(r)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		lines, err := s.KeyLifecycle.Revoke(r.Context(), venue, name, in.Reason, in.AtVenue)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "code": "revoke_incomplete", "lines": lines})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"lines": lines})
	})
}

func handleKeyRotate(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.KeyLifecycle == nil {
			writeError(w, s.log, errNotOffered)
			return
		}
		var in RotateRequest
		if err := readJSON(w, r, &in); err != nil {
			writeError(w, s.log, err)
			return
		}
		venue, name := r.PathValue("venue"), r.PathValue("name")
		if !from(r).p.InScope(venue, name) {
			writeError(w, s.log, errNotFound)
			return
		}
		if _, err := s.Keys.Key(r.Context(), venue, name); err != nil {
			writeError(w, s.log, errNotFound)
			return
		}
		if err := s.event(r.Context(), "key.rotate", from(r).p.Name, map[string]string{"key": venue + "/" + name,
			"permissions": strings.Join(in.Permissions, ","), "ips": strings.Join(in.IPs, ","), "source": remoteAddr(r)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		lines, err := s.KeyLifecycle.Rotate(r.Context(), venue, name, in)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "code": "rotate_incomplete", "lines": lines})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"lines": lines})
	})
}

// handlePosture answers the newest scheduled posture runs (limit, default
// 1), with each run's changes from the run before it. Findings of keys out
// of the caller's scope are left out.
func handlePosture(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Posture == nil {
			writeJSON(w, http.StatusOK, map[string]any{"runs": []any{}})
			return
		}
		limit := 1
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeError(w, s.log, badRequest("limit: 1 to 1000"))
				return
			}
			limit = n
		}
		runs, err := s.Posture.Runs(r.Context(), limit+1)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		p := from(r).p
		inScope := func(key string) bool {
			v, n, _ := strings.Cut(key, "/")
			return p.InScope(v, n)
		}
		for i := range runs {
			runs[i].Keys = slices.DeleteFunc(runs[i].Keys, func(k string) bool { return !inScope(k) })
			runs[i].Findings = slices.DeleteFunc(runs[i].Findings, func(f posture.Finding) bool { return !inScope(f.Key) })
		}
		type runOut struct {
			posture.Run
			Changes []posture.Change `json:"changes"`
		}
		out := []runOut{}
		for i := 0; i < len(runs) && i < limit; i++ {
			ro := runOut{Run: runs[i], Changes: []posture.Change{}}
			if i+1 < len(runs) {
				if ch := posture.Compare(runs[i+1], runs[i]); ch != nil {
					ro.Changes = ch
				}
			}
			out = append(out, ro)
		}
		writeJSON(w, http.StatusOK, map[string]any{"runs": out})
	})
}

// approvedAll is approved for a change that needs several actions
// approved: the request names one approved request per configured action
// (?approval=ID&approval=ID). Nothing is used up unless every action has
// its approval; the first action without one gets a new pending request
// (202), with detail shown to approvers. Approvals that match nothing are
// refused.
func (s *api) approvedAll(w http.ResponseWriter, r *http.Request, actions []string, subject, detail string) bool {
	var need []string
	for _, a := range actions {
		if _, ok := s.Approvals[a]; ok {
			need = append(need, a)
		}
	}
	if len(need) == 0 {
		return true
	}
	p := from(r).p
	ids := r.URL.Query()["approval"]
	match := map[string]string{}
	for _, action := range need {
		for _, id := range ids {
			a, err := s.ops.Approval(r.Context(), id)
			if err == nil && a.State == operator.StateApproved && a.Requester == p.Name && a.Action == action && a.Subject == subject {
				match[action] = id
				break
			}
		}
	}
	for _, action := range need {
		if _, ok := match[action]; ok {
			continue
		}
		if len(ids) > 0 && len(match) == 0 {
			writeError(w, s.log, operator.ErrNotApproved)
			return false
		}
		a, err := s.ops.RequestDetail(r.Context(), p, action, subject, detail, s.Approvals[action])
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
	for _, action := range need {
		if err := s.ops.Consume(r.Context(), p, match[action], action, subject); err != nil {
			writeError(w, s.log, err)
			return false
		}
	}
	return true
}

// handleRecoveryCodes replaces the caller's recovery codes with new ones,
// shown once. It needs step-up: a stolen session cannot mint codes.
func handleRecoveryCodes(s *api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := from(r).p
		if err := s.event(r.Context(), "recovery-codes", p.Name, map[string]string{"source": remoteAddr(r)}); err != nil {
			writeError(w, s.log, err)
			return
		}
		codes, err := s.ops.NewRecoveryCodes(r.Context(), p.Name)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
	})
}

// handleComplianceReport answers the compliance report (?format=json, md
// or html; default json) over the keys in the caller's scope: declared
// scopes, findings of the latest scheduled posture run, ages, rotations done
// and due, revocations and the finding-count history.
func handleComplianceReport(s *api) http.Handler {
	types := map[string]string{"json": "application/json", "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Reports == nil {
			writeError(w, s.log, &httpError{http.StatusNotFound, "not_found", "reports are not offered by this keywarden"})
			return
		}
		format := r.URL.Query().Get("format")
		if format == "" {
			format = "json"
		}
		ct, ok := types[format]
		if !ok {
			writeError(w, s.log, badRequest("format: json, md or html"))
			return
		}
		p := from(r).p
		b, err := s.Reports.Compliance(r.Context(), format, p.InScope)
		if err != nil {
			writeError(w, s.log, err)
			return
		}
		w.Header().Set("Content-Type", ct)
		if format == "html" {
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	})
}

// exportedCheckpoint is one checkpoint of an export, as the API shows it:
// kind "chain" (a signed chain head) or "merkle" (a C2SP signed note over
// the Merkle tree).
type exportedCheckpoint struct {
	Kind      string    `json:"kind"`
	Count     uint64    `json:"count"`
	Head      string    `json:"head,omitempty"`
	Root      string    `json:"root,omitempty"`
	Time      time.Time `json:"time,omitzero"`
	KeyID     string    `json:"key_id,omitempty"`
	Signature string    `json:"signature,omitempty"`
}

// exportedCheckpoints reads a checkpoint export (witness lines and C2SP
// notes) back, checking every signature with pub, for the API's answer;
// the export's text goes along as "witness" for a witness file.
func exportedCheckpoints(export []byte, pub ed25519.PublicKey) ([]exportedCheckpoint, error) {
	ws, err := audit.ReadWitness(bytes.NewReader(export), pub)
	if err != nil {
		return nil, err
	}
	out := make([]exportedCheckpoint, 0, len(ws))
	for _, w := range ws {
		c := exportedCheckpoint{Kind: "chain", Count: w.Count, Head: w.Head, Time: w.Time, KeyID: w.KeyID, Signature: w.Signature}
		if w.Note {
			c = exportedCheckpoint{Kind: "merkle", Count: w.Count, Root: w.Root, Time: w.Time, KeyID: w.KeyID, Signature: w.Signature}
		}
		out = append(out, c)
	}
	return out, nil
}
