package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/audit"
)

// auditQuery is the audit search form.
type auditQuery struct {
	Client, Key, Venue, Scope, Decision, Type, RequestID, From, To string
	Limit                                                          int
}

const maxAuditRows = 500

func badRequest(msg string) error {
	return &admin.APIError{Status: http.StatusBadRequest, Code: "bad_request", Msg: msg}
}

// parseTime reads a form time: RFC 3339, or the browser's datetime-local
// value (taken as UTC).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("a time such as 2026-01-31T14:00 (UTC)")
}

func (q *auditQuery) filter() (audit.Filter, error) {
	f := audit.Filter{Client: q.Client, Key: q.Key, Venue: q.Venue, Scope: q.Scope, Decision: q.Decision, RequestID: q.RequestID}
	if q.Type != "" {
		f.Types = []audit.Type{audit.Type(q.Type)}
	}
	var err error
	if f.From, err = parseTime(q.From); err != nil {
		return f, badRequest("from: " + err.Error())
	}
	if f.To, err = parseTime(q.To); err != nil {
		return f, badRequest("to: " + err.Error())
	}
	return f, nil
}

// auditSearch lists the newest matching records, newest first. The log is
// read through audit.Search, which checks every record's own hash.
func (h *Handler) auditSearch(c *call) error {
	v := c.r.URL.Query()
	q := auditQuery{Client: strings.TrimSpace(v.Get("client")), Key: strings.TrimSpace(v.Get("key")),
		Venue: strings.TrimSpace(v.Get("venue")), Scope: v.Get("scope"), Decision: v.Get("decision"), Type: v.Get("type"),
		RequestID: strings.TrimSpace(v.Get("request_id")), From: v.Get("from"), To: v.Get("to"), Limit: 100}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditRows {
			return badRequest(fmt.Sprintf("limit: 1 to %d", maxAuditRows))
		}
		q.Limit = n
	}
	f, err := q.filter()
	if err != nil {
		return err
	}
	// A ring of the last Limit matches: the page shows the newest.
	ring := make([]audit.Record, 0, q.Limit)
	total, start := 0, 0
	var searchErr string
	if h.o.AuditDir != "" {
		for rec, err := range audit.Search(h.o.AuditDir, f) {
			if err != nil {
				searchErr = err.Error()
				break
			}
			total++
			if len(ring) < q.Limit {
				ring = append(ring, rec)
			} else {
				ring[start] = rec
				start = (start + 1) % q.Limit
			}
		}
	}
	rows := make([]audit.Record, 0, len(ring))
	for i := len(ring) - 1; i >= 0; i-- {
		rows = append(rows, ring[(start+i)%len(ring)])
	}
	h.render(c, http.StatusOK, "audit", "Audit log", "audit", map[string]any{
		"Query": q, "Rows": rows, "Total": total, "Error": searchErr,
		"Types":     []audit.Type{audit.TypeIntent, audit.TypeDenied, audit.TypeOutcome, audit.TypeEvent, audit.TypeCheckpoint},
		"Decisions": []string{audit.DecisionAllow, audit.DecisionDeny},
		"Scopes":    []string{"public", "read", "trade", "transfer", "withdraw", "account-admin"},
	})
	return nil
}

// chainView is the verification shown with one record.
type chainView struct {
	HashOK      bool // the record's own hash matches its content
	Prev        *audit.Record
	PrevLinked  bool // the previous record's hash is this record's prev
	Next        *audit.Record
	NextLinked  bool // the next record's prev is this record's hash
	Checkpoint  *audit.Record
	Verified    bool   // the whole log verified
	Report      string // audit.Report summary or the first failure
	SignedCheck bool   // checkpoint signatures were checked
}

func (h *Handler) auditRecord(c *call) error {
	seq, err := strconv.ParseUint(c.r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 || h.o.AuditDir == "" {
		return errNotFoundPage
	}
	var rec *audit.Record
	var cv chainView
	after := uint64(0)
	if seq > 1 {
		after = seq - 2
	}
	n := 0
	for r, err := range audit.Search(h.o.AuditDir, audit.Filter{AfterSeq: after}) {
		if err != nil {
			cv.Report = err.Error()
			break
		}
		r := r
		switch {
		case r.Seq < seq:
			cv.Prev = &r
		case r.Seq == seq:
			rec = &r
			cv.HashOK = true // Search parsed it and checked its hash
		case cv.Next == nil:
			cv.Next = &r
		}
		if rec != nil && r.Seq > seq && r.Type == audit.TypeCheckpoint {
			cv.Checkpoint = &r
			break
		}
		n++
		if rec == nil && n > 2 {
			break
		}
	}
	if rec == nil {
		return errNotFoundPage
	}
	cv.PrevLinked = cv.Prev != nil && cv.Prev.Hash == rec.Prev
	cv.NextLinked = cv.Next != nil && cv.Next.Prev == rec.Hash
	rep, err := audit.Verify(h.o.AuditDir, h.o.AuditKey)
	cv.SignedCheck = h.o.AuditKey != nil
	if err != nil {
		cv.Report = err.Error()
	} else {
		cv.Verified = true
		cv.Report = rep.String()
	}
	h.render(c, http.StatusOK, "record", fmt.Sprintf("Audit record %d", seq), "audit", map[string]any{
		"Record": rec, "Chain": cv, "Genesis": seq == 1,
	})
	return nil
}
