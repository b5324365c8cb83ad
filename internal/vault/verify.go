package vault

import (
	"context"
	"fmt"
	"strings"
)

// Problem is one inconsistency Verify found. It names records, never their
// content.
type Problem struct {
	Record string `json:"record"`
	Issue  string `json:"issue"`
}

// Verify checks the exchange key inventory end to end: every key's sealed
// secret opens and builds a credential, every fingerprint index entry points
// at its key, and no sealed secret or index entry is left without its key.
// It needs the vault unsealed. It returns the problems found; the error is
// for failures to read the store.
func (v *Vault) Verify(ctx context.Context) ([]Problem, error) {
	if v.Sealed() {
		return nil, fmt.Errorf("vault verify: %w", ErrSealed)
	}
	var problems []Problem
	keys, err := v.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault verify: %w", err)
	}
	have := make(map[string]KeyInfo, len(keys))
	for _, k := range keys {
		have[k.ID()] = k
		v.mu.RLock()
		c, err := v.openCredential(ctx, k.Exchange, k.Name)
		v.mu.RUnlock()
		if err != nil {
			problems = append(problems, Problem{Record: k.ID(), Issue: "secret does not open: " + err.Error()})
			continue
		}
		zeroCredential(c)
		idx, err := v.store.Get(ctx, keyFPKey(k.Exchange, k.Fingerprint))
		if err != nil || string(idx) != k.ID() {
			problems = append(problems, Problem{Record: k.ID(), Issue: "fingerprint index missing or wrong"})
		}
	}
	fps, err := v.store.List(ctx, keyFPPrefix)
	if err != nil {
		return nil, fmt.Errorf("vault verify: %w", err)
	}
	for _, f := range fps {
		idx, err := v.store.Get(ctx, f)
		if err != nil {
			continue
		}
		if k, ok := have[string(idx)]; !ok || keyFPKey(k.Exchange, k.Fingerprint) != f {
			problems = append(problems, Problem{Record: f, Issue: "fingerprint index without its key"})
		}
	}
	secrets, err := v.store.List(ctx, secretPrefix+exchangeKind+"/")
	if err != nil {
		return nil, fmt.Errorf("vault verify: %w", err)
	}
	for _, s := range secrets {
		if _, ok := have[strings.TrimPrefix(s, secretPrefix+exchangeKind+"/")]; !ok {
			problems = append(problems, Problem{Record: s, Issue: "sealed secret without its key"})
		}
	}
	return problems, nil
}
