// Package rotation rotates exchange API keys. Automated rotation, for venues
// whose API can create and delete keys, is a state machine persisted in the
// store after every step, so a crash at any point resumes where it stopped:
//
//	started  -> the old key's API id is recorded
//	created  -> the new key exists at the venue; its secret is sealed in the vault
//	verified -> the new key answered a read call and is no broader than declared
//	switched -> the vault signs with the new key (client credentials unchanged)
//	done     -> after the grace period the old key is deleted at the venue
//
// Guided rotation (venues without key management) is the same machine
// entered at "created" with a key the operator made by hand.
package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

// Step is where a rotation stands.
type Step string

// Steps, in order.
const (
	StepStarted  Step = "started"
	StepCreated  Step = "created"
	StepVerified Step = "verified"
	StepSwitched Step = "switched"
	StepDone     Step = "done"
)

// State is a rotation as persisted. It holds no secret: the new key's
// secret waits in the vault until the switch.
type State struct {
	Exchange   string    `json:"exchange"`
	Name       string    `json:"name"`
	Step       Step      `json:"step"`
	Guided     bool      `json:"guided,omitempty"`
	OldKeyID   string    `json:"old_key_id"` // the venue's id to delete the old key by
	NewKeyFP   string    `json:"new_key_fingerprint,omitempty"`
	Label      string    `json:"label"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	GraceUntil time.Time `json:"grace_until,omitzero"`
}

// ID is the rotated key's "exchange/name".
func (s *State) ID() string { return s.Exchange + "/" + s.Name }

// Venue is the venue side of a rotation. Requests are signed with signer,
// the key being rotated.
type Venue interface {
	CreateKey(ctx context.Context, signer *exchange.Credential, spec exchange.KeySpec) (*exchange.Credential, error)
	DeleteKey(ctx context.Context, signer *exchange.Credential, keyID string, spec exchange.KeySpec) error
	Inspect(ctx context.Context, key *exchange.Credential) (exchange.KeyPosture, error)
}

// Vault is what rotation needs from the vault.
type Vault interface {
	Key(ctx context.Context, ex, name string) (vault.KeyInfo, error)
	Credential(ctx context.Context, ex, name string) (*exchange.Credential, error)
	ReplaceKeySecret(ctx context.Context, ex, name string, in vault.KeyInput) (vault.KeyInfo, error)
	PutSecret(ctx context.Context, kind, id string, secret []byte) error
	Secret(ctx context.Context, kind, id string) ([]byte, error)
	DeleteSecret(ctx context.Context, kind, id string) error
	Fingerprint(data []byte) string
}

// Auditor records every step; a failed record stops the rotation.
type Auditor interface {
	Record(ctx context.Context, action, key, detail string) error
}

// Options configure a Rotator.
type Options struct {
	Store store.Store
	Vault Vault
	Audit Auditor
	Log   *slog.Logger
	Now   func() time.Time
	// Grace is how long the old key keeps working after the switch.
	Grace time.Duration
	// Permissions are the venue permission names of the new key (the same
	// as or narrower than the old key's).
	Permissions []string
	IPs         []string
	// SubAccount is the sub-account the key belongs to, for venues that
	// create keys only for sub-accounts (Bybit, OKX, KuCoin, Gate).
	SubAccount string
	// Manager names the vault key ("exchange/name") that creates and
	// deletes keys, for venues where a master key manages sub-account
	// keys. Empty means the key being rotated manages itself (Deribit).
	Manager string
	// AfterStep, when set, runs after each step is persisted; an error
	// stops the rotation there (tests use it to simulate a crash).
	AfterStep func(Step) error
}

// Rotator runs rotations.
type Rotator struct{ o Options }

// New returns a Rotator.
func New(o Options) (*Rotator, error) {
	if o.Store == nil || o.Vault == nil || o.Audit == nil {
		return nil, errors.New("rotation: store, vault and audit are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Rotator{o: o}, nil
}

const (
	statePrefix = "rotation/"
	secretKind  = "rotation"
	// oldPassKind seals the old key's passphrase until the old key is
	// deleted: KuCoin asks for it to delete a key, and the vault signs with
	// the new key by then.
	oldPassKind = "rotation-old-passphrase"
)

func stateKey(ex, name string) string { return statePrefix + ex + "/" + name }

// Load returns the persisted rotation of ex/name, or store.ErrNotFound.
func (r *Rotator) Load(ctx context.Context, ex, name string) (*State, error) {
	b, err := r.o.Store.Get(ctx, stateKey(ex, name))
	if err != nil {
		return nil, fmt.Errorf("rotation load %s/%s: %w", ex, name, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil || st.Exchange != ex || st.Name != name {
		return nil, fmt.Errorf("rotation load %s/%s: malformed state", ex, name)
	}
	return &st, nil
}

// List returns every persisted rotation, finished or not.
func (r *Rotator) List(ctx context.Context) ([]State, error) {
	keys, err := r.o.Store.List(ctx, statePrefix)
	if err != nil {
		return nil, fmt.Errorf("rotation list: %w", err)
	}
	var out []State
	for _, k := range keys {
		b, err := r.o.Store.Get(ctx, k)
		if err != nil {
			continue
		}
		var st State
		if json.Unmarshal(b, &st) == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

func (r *Rotator) save(ctx context.Context, st *State, step Step, detail string) error {
	if err := r.o.Audit.Record(ctx, "key.rotate."+string(step), st.ID(), detail); err != nil {
		return fmt.Errorf("rotation %s: audit %s: %w", st.ID(), step, err)
	}
	st.Step, st.Updated = step, r.o.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := r.o.Store.Put(ctx, stateKey(st.Exchange, st.Name), b); err != nil {
		return fmt.Errorf("rotation %s: save %s: %w", st.ID(), step, err)
	}
	r.o.Log.Info("key rotation step", "key", st.ID(), "step", step)
	if r.o.AfterStep != nil {
		return r.o.AfterStep(step)
	}
	return nil
}

// pending is the new key as sealed in the vault between create and switch.
type pending struct {
	APIKey     string `json:"api_key"`
	Secret     []byte `json:"secret"`
	Passphrase []byte `json:"passphrase,omitempty"`
	Account    string `json:"account,omitempty"`
}

func (r *Rotator) putPending(ctx context.Context, st *State, c *exchange.Credential) error {
	b, err := json.Marshal(pending{APIKey: c.APIKey, Secret: c.Secret, Passphrase: c.Passphrase, Account: c.Account})
	if err != nil {
		return err
	}
	defer clear(b)
	return r.o.Vault.PutSecret(ctx, secretKind, st.Exchange+"."+st.Name, b)
}

func (r *Rotator) pending(ctx context.Context, st *State) (*exchange.Credential, error) {
	b, err := r.o.Vault.Secret(ctx, secretKind, st.Exchange+"."+st.Name)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, errors.New("pending key is malformed")
	}
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: p.APIKey, Secret: exchange.Secret(p.Secret),
		Passphrase: exchange.Secret(p.Passphrase), Account: p.Account}, nil
}

// Start begins an automated rotation of ex/name and runs it as far as it
// can go now (see Resume). A finished earlier rotation is replaced; an
// unfinished one is refused: resume it instead.
func (r *Rotator) Start(ctx context.Context, v Venue, ex, name string) (*State, error) {
	if st, err := r.Load(ctx, ex, name); err == nil && st.Step != StepDone {
		return st, fmt.Errorf("rotation %s/%s: a rotation is already at step %s; resume it", ex, name, st.Step)
	}
	if _, err := r.o.Vault.Key(ctx, ex, name); err != nil {
		return nil, fmt.Errorf("rotation start: %w", err)
	}
	old, err := r.o.Vault.Credential(ctx, ex, name)
	if err != nil {
		return nil, fmt.Errorf("rotation start: %w", err)
	}
	now := r.o.Now().UTC()
	st := &State{Exchange: ex, Name: name, OldKeyID: KeyID(ex, old), Started: now,
		Label: fmt.Sprintf("keywarden-%s-%d", name, now.Unix())}
	if len(old.Passphrase) > 0 {
		if err := r.o.Vault.PutSecret(ctx, oldPassKind, ex+"."+name, old.Passphrase); err != nil {
			return nil, fmt.Errorf("rotation start: keep the old key's passphrase: %w", err)
		}
	}
	if err := r.save(ctx, st, StepStarted, "label "+st.Label); err != nil {
		return st, err
	}
	return r.Resume(ctx, v, ex, name)
}

// KeyID is the venue's id to delete a key by: Deribit deletes by the
// numeric id kept in Account, every other venue by the API key.
func KeyID(ex string, c *exchange.Credential) string {
	if ex == "deribit" && c.Account != "" {
		return c.Account
	}
	return c.APIKey
}

// signer returns the credential that manages keys for ex/name.
func (r *Rotator) signer(ctx context.Context, ex, name string) (*exchange.Credential, error) {
	if r.o.Manager == "" {
		return r.o.Vault.Credential(ctx, ex, name)
	}
	mex, mname, ok := strings.Cut(r.o.Manager, "/")
	if !ok {
		return nil, fmt.Errorf("manager key %q is not exchange/name", r.o.Manager)
	}
	if mex != ex {
		return nil, fmt.Errorf("manager key %s is not a %s key", r.o.Manager, ex)
	}
	return r.o.Vault.Credential(ctx, mex, mname)
}

// Resume continues the rotation of ex/name from its persisted step, as far
// as it can go at the current time: it stops at "switched" until the grace
// period is over.
func (r *Rotator) Resume(ctx context.Context, v Venue, ex, name string) (*State, error) {
	st, err := r.Load(ctx, ex, name)
	if err != nil {
		return nil, err
	}
	spec := exchange.KeySpec{Label: st.Label, Permissions: r.o.Permissions, IPs: r.o.IPs, SubAccount: r.o.SubAccount}
	for range 5 { // one pass per step at most
		switch st.Step {
		case StepStarted:
			if v == nil {
				return st, fmt.Errorf("rotation %s: the venue cannot create keys; add the new key with a guided rotation", st.ID())
			}
			signer, err := r.signer(ctx, ex, name)
			if err != nil {
				return st, fmt.Errorf("rotation %s: %w", st.ID(), err)
			}
			nk, err := v.CreateKey(ctx, signer, spec)
			if err != nil {
				return st, fmt.Errorf("rotation %s: create: %w", st.ID(), err)
			}
			st.NewKeyFP = r.o.Vault.Fingerprint([]byte(nk.APIKey))
			err = r.putPending(ctx, st, nk)
			if err != nil {
				return st, fmt.Errorf("rotation %s: keep new key: %w", st.ID(), err)
			}
			if err := r.save(ctx, st, StepCreated, "new key "+st.NewKeyFP); err != nil {
				return st, err
			}
		case StepCreated:
			if err := r.verify(ctx, v, st); err != nil {
				return st, err
			}
			if err := r.save(ctx, st, StepVerified, "read call and posture check passed"); err != nil {
				return st, err
			}
		case StepVerified:
			info, err := r.o.Vault.Key(ctx, ex, name)
			if err != nil {
				return st, fmt.Errorf("rotation %s: %w", st.ID(), err)
			}
			if info.Fingerprint != st.NewKeyFP { // not switched before a crash
				nk, err := r.pending(ctx, st)
				if err != nil {
					return st, fmt.Errorf("rotation %s: new key: %w", st.ID(), err)
				}
				_, err = r.o.Vault.ReplaceKeySecret(ctx, ex, name, vault.KeyInput{APIKey: nk.APIKey, Secret: nk.Secret, Passphrase: nk.Passphrase, Account: nk.Account})
				if err != nil {
					return st, fmt.Errorf("rotation %s: switch: %w", st.ID(), err)
				}
			}
			st.GraceUntil = r.o.Now().UTC().Add(r.o.Grace)
			if err := r.save(ctx, st, StepSwitched, "old key kept until "+st.GraceUntil.Format(time.RFC3339)); err != nil {
				return st, err
			}
		case StepSwitched:
			if r.o.Now().Before(st.GraceUntil) {
				return st, nil
			}
			if st.Guided || v == nil {
				return st, nil // the operator confirms deletion with Confirm
			}
			signer, err := r.signer(ctx, ex, name)
			if err != nil {
				return st, fmt.Errorf("rotation %s: %w", st.ID(), err)
			}
			del := spec
			if pass, err := r.o.Vault.Secret(ctx, oldPassKind, ex+"."+name); err == nil {
				del.Passphrase = exchange.Secret(pass)
				defer clear(pass)
			}
			if err := v.DeleteKey(ctx, signer, st.OldKeyID, del); err != nil {
				return st, fmt.Errorf("rotation %s: delete old key: %w", st.ID(), err)
			}
			detail := "old key deleted at the venue"
			if n, ok := v.(interface{ DeleteNote() string }); ok && n.DeleteNote() != "" {
				detail = "old key " + n.DeleteNote() // Bitget cannot delete it
			}
			if err := r.finish(ctx, st, detail); err != nil {
				return st, err
			}
		case StepDone:
			return st, nil
		default:
			return st, fmt.Errorf("rotation %s: unknown step %q", st.ID(), st.Step)
		}
	}
	return st, nil
}

func (r *Rotator) finish(ctx context.Context, st *State, detail string) error {
	for _, kind := range []string{secretKind, oldPassKind} {
		if err := r.o.Vault.DeleteSecret(ctx, kind, st.Exchange+"."+st.Name); err != nil && !errors.Is(err, vault.ErrNotFound) && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("rotation %s: drop pending key: %w", st.ID(), err)
		}
	}
	return r.save(ctx, st, StepDone, detail)
}

// verify checks the new key with a read call (the venue's self-inspection)
// and refuses it when it can do more than the key is declared for.
func (r *Rotator) verify(ctx context.Context, v Venue, st *State) error {
	nk, err := r.pending(ctx, st)
	if err != nil {
		return fmt.Errorf("rotation %s: new key: %w", st.ID(), err)
	}
	info, err := r.o.Vault.Key(ctx, st.Exchange, st.Name)
	if err != nil {
		return fmt.Errorf("rotation %s: %w", st.ID(), err)
	}
	if v == nil {
		return fmt.Errorf("rotation %s: no venue to verify the new key with", st.ID())
	}
	p, err := v.Inspect(ctx, nk)
	if err != nil {
		return fmt.Errorf("rotation %s: verify new key: %w", st.ID(), err)
	}
	for _, f := range posture.Evaluate(info, p, posture.Policy{}, r.o.Now()) {
		switch f.Code {
		case posture.CodeWithdraw, posture.CodeTransfer, posture.CodeTrade:
			return fmt.Errorf("rotation %s: new key refused: %s", st.ID(), f.Message)
		}
	}
	return nil
}

// StartGuided records a key the operator created by hand at the venue as
// the new key of ex/name, then verifies and switches to it like an
// automated rotation. The old key stays at "switched" until Confirm.
func (r *Rotator) StartGuided(ctx context.Context, v Venue, ex, name string, nk *exchange.Credential) (*State, error) {
	if st, err := r.Load(ctx, ex, name); err == nil && st.Step != StepDone {
		return st, fmt.Errorf("rotation %s/%s: a rotation is already at step %s", ex, name, st.Step)
	}
	old, err := r.o.Vault.Credential(ctx, ex, name)
	if err != nil {
		return nil, fmt.Errorf("rotation start: %w", err)
	}
	now := r.o.Now().UTC()
	st := &State{Exchange: ex, Name: name, Guided: true, OldKeyID: KeyID(ex, old), Started: now,
		NewKeyFP: r.o.Vault.Fingerprint([]byte(nk.APIKey)), Label: fmt.Sprintf("keywarden-%s-%d", name, now.Unix())}
	if err := r.putPending(ctx, st, nk); err != nil {
		return nil, fmt.Errorf("rotation %s: keep new key: %w", st.ID(), err)
	}
	if err := r.save(ctx, st, StepCreated, "guided: new key "+st.NewKeyFP); err != nil {
		return st, err
	}
	return r.Resume(ctx, v, ex, name)
}

// Confirm finishes a guided rotation once the operator has deleted the old
// key at the venue.
func (r *Rotator) Confirm(ctx context.Context, ex, name string) (*State, error) {
	st, err := r.Load(ctx, ex, name)
	if err != nil {
		return nil, err
	}
	if st.Step != StepSwitched {
		return st, fmt.Errorf("rotation %s: at step %s, not waiting for confirmation", st.ID(), st.Step)
	}
	return st, r.finish(ctx, st, "operator confirmed the old key is deleted at the venue")
}
