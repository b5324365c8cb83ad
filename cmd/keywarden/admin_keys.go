package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/rotation"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

// adminKeys revokes and rotates exchange keys for the admin API, in the
// serving process: the gateway sees a revocation on its next request.
type adminKeys struct {
	a     *app
	v     *vault.Vault
	st    store.Store
	audit auditAppender
}

// auditAppender writes records to the hash-chained audit log;
// *audit.Log implements it.
type auditAppender interface {
	Append(ctx context.Context, r audit.Record) (audit.Receipt, error)
}

var _ admin.KeyLifecycle = (*adminKeys)(nil)

func (k *adminKeys) Revoke(ctx context.Context, venue, name, reason string, atVenue bool) ([]string, error) {
	out, err := k.a.revokeKey(ctx, k.v, keyRevokeRequest{Exchange: venue, Name: name, Reason: reason, AtVenue: atVenue})
	return out.Lines, err
}

func (k *adminKeys) Rotate(ctx context.Context, venue, name string, req admin.RotateRequest) ([]string, error) {
	var grace time.Duration
	if req.Grace != "" {
		d, err := time.ParseDuration(req.Grace)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("grace %q: a duration such as 24h", req.Grace)
		}
		grace = d
	}
	r, err := rotation.New(rotation.Options{Store: k.st, Vault: k.v, Audit: chainAuditor{log: k.audit, actor: "admin-api"}, Log: k.a.log,
		Grace: grace, Permissions: req.Permissions, IPs: req.IPs, SubAccount: req.SubAccount, Manager: req.Manager})
	if err != nil {
		return nil, err
	}
	ven, err := k.a.rotationVenue(venue)
	if err != nil {
		return nil, err
	}
	hv := rotation.VenueFor(&rotation.HTTPVenue{Venue: ven, Client: k.a.httpClient()}, k.st, k.v, venue, name)
	var st *rotation.State
	if cur, lerr := r.Load(ctx, venue, name); lerr == nil && cur.Step != rotation.StepDone {
		st, err = r.Resume(ctx, hv, venue, name)
	} else {
		if len(req.Permissions) == 0 {
			return nil, errors.New("give the new key's permissions (the venue's names)")
		}
		st, err = r.Start(ctx, hv, venue, name)
	}
	var lines []string
	if st != nil {
		lines = append(lines, fmt.Sprintf("Rotation of %s: %s", st.ID(), st.Step))
		if st.Step == rotation.StepSwitched && !st.Guided {
			lines = append(lines, fmt.Sprintf("The old key is deleted after %s: rotate again then.", st.GraceUntil.Format(time.RFC3339)))
		}
	}
	return lines, err
}

// chainAuditor records rotation steps in the hash-chained audit log as
// events named by the step (key.rotate.created, ...). A step that cannot be
// recorded stops the rotation.
type chainAuditor struct {
	log   auditAppender
	actor string
}

func (c chainAuditor) Record(ctx context.Context, action, key, detail string) error {
	_, err := c.log.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: action, Actor: c.actor,
		Detail: map[string]string{"key": key, "detail": detail}}})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// adminSeal rotates the keyring and rekeys the vault for the admin API.
type adminSeal struct {
	v   *vault.Vault
	kdf *vault.KDFParams
}

var _ admin.Seal = (*adminSeal)(nil)

func (s *adminSeal) Rotate(ctx context.Context) error { return s.v.Rotate(ctx) }

func (s *adminSeal) Rekey(ctx context.Context, pass []byte, shares, threshold int) ([]string, error) {
	opts := vault.RekeyOptions{KDF: s.kdf}
	if len(pass) > 0 {
		opts.Passphrase = pass
	} else {
		opts.Shares, opts.Threshold = shares, threshold
	}
	out, err := s.v.Rekey(ctx, opts)
	if err != nil {
		return nil, err
	}
	var enc []string
	for _, sh := range out {
		enc = append(enc, encodeShare(sh))
		clear(sh)
	}
	return enc, nil
}
