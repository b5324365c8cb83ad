package operator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keywarden/keywarden/internal/store"
)

// Approval states.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateRejected = "rejected"
	StateExpired  = "expired"
	StateUsed     = "used"
)

// Errors of the approval flow.
var (
	ErrSelfApproval = errors.New("the requester cannot approve their own request")
	ErrNotPending   = errors.New("approval is not pending")
	ErrNotApproved  = errors.New("action needs an approved request")
)

// Rule says that an action needs Required approvals from operators with
// Role before it runs; requests expire after TTL.
type Rule struct {
	Role     Role          `json:"role" toml:"role"`
	Required int           `json:"required" toml:"required"`
	TTL      time.Duration `json:"ttl" toml:"ttl"`
}

// Approval is a request for a k-of-n approved action.
type Approval struct {
	ID      string `json:"id"`
	Action  string `json:"action"`
	Subject string `json:"subject"` // what the action applies to
	// Detail shows approvers what they approve (a policy edit's diff).
	Detail    string    `json:"detail,omitempty"`
	Requester string    `json:"requester"`
	Rule      Rule      `json:"rule"`
	Approvers []string  `json:"approvers"`
	Rejecter  string    `json:"rejecter,omitempty"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
}

func approvalKey(id string) string { return "operators/approvals/" + id }

// Request records a pending approval for action on subject.
func (m *Manager) Request(ctx context.Context, requester Principal, action, subject string, r Rule) (Approval, error) {
	return m.RequestDetail(ctx, requester, action, subject, "", r)
}

// RequestDetail is Request with a detail shown to approvers.
func (m *Manager) RequestDetail(ctx context.Context, requester Principal, action, subject, detail string, r Rule) (Approval, error) {
	if r.Required < 1 || !r.Role.Valid() || r.TTL <= 0 {
		return Approval{}, fmt.Errorf("request approval: %w: bad rule", ErrInvalid)
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return Approval{}, fmt.Errorf("request approval: %w", err)
	}
	now := m.now().UTC()
	a := Approval{ID: hex.EncodeToString(b), Action: action, Subject: subject, Detail: detail, Requester: requester.Name, Rule: r,
		Approvers: []string{}, State: StatePending, Created: now, Expires: now.Add(r.TTL)}
	m.mu.Lock()
	defer m.mu.Unlock()
	return a, m.putApproval(ctx, &a)
}

func (m *Manager) putApproval(ctx context.Context, a *Approval) error {
	return putApproval(ctx, m.o.Store, a)
}

func putApproval(ctx context.Context, w writer, a *Approval) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := w.Put(ctx, approvalKey(a.ID), b); err != nil {
		return fmt.Errorf("write approval: %w", err)
	}
	return nil
}

func (m *Manager) getApproval(ctx context.Context, id string) (*Approval, error) {
	return m.getApprovalFrom(ctx, m.o.Store, id)
}

func (m *Manager) getApprovalFrom(ctx context.Context, r reader, id string) (*Approval, error) {
	if _, err := hex.DecodeString(id); err != nil || len(id) != 24 {
		return nil, ErrNotFound
	}
	b, err := r.Get(ctx, approvalKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("read approval: %w", err)
	}
	var a Approval
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("read approval: %w", err)
	}
	if a.State == StatePending && !m.now().Before(a.Expires) {
		a.State = StateExpired
	}
	return &a, nil
}

// Approval returns one approval request.
func (m *Manager) Approval(ctx context.Context, id string) (Approval, error) {
	a, err := m.getApproval(ctx, id)
	if err != nil {
		return Approval{}, err
	}
	return *a, nil
}

// Approvals lists approval requests, oldest first.
func (m *Manager) Approvals(ctx context.Context) ([]Approval, error) {
	keys, err := m.o.Store.List(ctx, "operators/approvals/")
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	out := []Approval{}
	for _, k := range keys {
		a, err := m.getApproval(ctx, k[len("operators/approvals/"):])
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Approval) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Decide records by's approval (approve true) or rejection of id. The
// caller has checked by's fresh TOTP code. by must hold the rule's role and
// must not be the requester; each approver counts once.
func (m *Manager) Decide(ctx context.Context, by Principal, id string, approve bool) (Approval, error) {
	var out Approval
	var result error
	err := m.atomically(ctx, func(s rw) error {
		a, err := m.getApprovalFrom(ctx, s, id)
		if err != nil {
			return err
		}
		result = decide(a, by, approve)
		out = *a
		if result != nil {
			return nil // refused: nothing to write
		}
		return putApproval(ctx, s, a)
	})
	if err != nil {
		return Approval{}, err
	}
	return out, result
}

// decide records by's decision in a, or says why it may not.
func decide(a *Approval, by Principal, approve bool) error {
	if a.State != StatePending {
		return ErrNotPending
	}
	if by.Name == a.Requester {
		return ErrSelfApproval
	}
	// Only the rule's role approves; admins may also reject.
	if by.Role != a.Rule.Role && (approve || by.Role != RoleAdmin) {
		return fmt.Errorf("decide: %w: role %s required", ErrInvalid, a.Rule.Role)
	}
	if approve {
		if slices.Contains(a.Approvers, by.Name) {
			return fmt.Errorf("decide: %w: already approved by %s", ErrInvalid, by.Name)
		}
		a.Approvers = append(a.Approvers, by.Name)
		if len(a.Approvers) >= a.Rule.Required {
			a.State = StateApproved
		}
	} else {
		a.State, a.Rejecter = StateRejected, by.Name
	}
	return nil
}

// Consume marks the approved request id for action on subject by requester
// as used, so that it authorizes exactly one action.
func (m *Manager) Consume(ctx context.Context, requester Principal, id, action, subject string) error {
	return m.atomically(ctx, func(s rw) error {
		a, err := m.getApprovalFrom(ctx, s, id)
		if err != nil {
			return ErrNotApproved
		}
		if a.State != StateApproved || a.Requester != requester.Name || a.Action != action || a.Subject != subject ||
			!m.now().Before(a.Expires) {
			return ErrNotApproved
		}
		a.State = StateUsed
		return putApproval(ctx, s, a)
	})
}
