package admin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/vault"
)

// fakeLifecycle records revocations and rotations: both are tested over
// the simulators in cmd/keywarden and internal/rotation.
type fakeLifecycle struct {
	v                *vault.Vault
	mu               sync.Mutex
	revoked, rotated []string
}

func (f *fakeLifecycle) Revoke(ctx context.Context, venue, name, reason string, atVenue bool) ([]string, error) {
	f.mu.Lock()
	f.revoked = append(f.revoked, venue+"/"+name+": "+reason)
	f.mu.Unlock()
	return []string{"Revoked " + venue + "/" + name}, nil
}

func (f *fakeLifecycle) Rotate(ctx context.Context, venue, name string, r RotateRequest) ([]string, error) {
	if len(r.Permissions) == 0 {
		return nil, errors.New("no permissions")
	}
	f.mu.Lock()
	f.rotated = append(f.rotated, venue+"/"+name)
	f.mu.Unlock()
	return []string{"Rotation of " + venue + "/" + name + ": created"}, nil
}

// fakeSeal counts keyring rotations and rekeys.
type fakeSeal struct {
	mu              sync.Mutex
	rotates, rekeys int
}

func (f *fakeSeal) Rotate(context.Context) error {
	f.mu.Lock()
	f.rotates++
	f.mu.Unlock()
	return nil
}

func (f *fakeSeal) Rekey(_ context.Context, pass []byte, shares, threshold int) ([]string, error) {
	f.mu.Lock()
	f.rekeys++
	f.mu.Unlock()
	if len(pass) > 0 {
		return nil, nil
	}
	out := make([]string, shares)
	for i := range out {
		out[i] = fmt.Sprintf("share-%d-of-%d", i+1, threshold)
	}
	return out, nil
}

// posture returns a history with two runs: binance/main gains a finding,
// binance/other loses one.
func (e *env) posture(st store.Store) *posture.History {
	h := posture.NewHistory(st, 0)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	keys := []string{"binance/main", "binance/other"}
	runs := []posture.Run{
		{Time: t0, Keys: keys, Findings: []posture.Finding{{Key: "binance/other", Code: posture.CodeNoIP, Severity: posture.High, Message: "no IP restriction"}}},
		{Time: t0.Add(6 * time.Hour), Keys: keys, Findings: []posture.Finding{{Key: "binance/main", Code: posture.CodeWithdraw, Severity: posture.Critical, Message: "withdraw enabled"}}},
	}
	for _, r := range runs {
		if err := h.Add(context.Background(), r); err != nil {
			e.t.Fatal(err)
		}
	}
	e.history = h
	return h
}
