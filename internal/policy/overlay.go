package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/keywarden/keywarden/internal/store"
)

// Errors of the overlay.
var (
	errNoOverlay = errors.New("policy overlay: none configured")
	// ErrNoPolicy is returned for a policy that neither the configuration
	// nor the overlay defines.
	ErrNoPolicy = errors.New("no such policy")
	// ErrConflict is returned by Apply when the policy changed since the
	// change was prepared.
	ErrConflict = errors.New("policy changed meanwhile; prepare the change again")
)

// Overlay keeps policies edited at run time (through the admin API) in a
// store, over the policies of the TOML configuration: an overlay record
// replaces the configured policy of the same name or adds a new one, and a
// deletion record hides one. The configuration file itself is never
// written. Overlay is safe for concurrent use; Apply serializes changes.
type Overlay struct {
	st   store.Store
	base map[string]Definition
	now  func() time.Time
	mu   sync.Mutex
}

// overlayPrefix is where overlay records live in the store.
const overlayPrefix = "policies/overlay/"

// overlayRecord is one stored overlay entry.
type overlayRecord struct {
	Definition Definition `json:"definition"`
	Deleted    bool       `json:"deleted,omitempty"`
	Updated    time.Time  `json:"updated"`
	By         string     `json:"by"`
}

// NewOverlay returns the overlay kept in st over the configured policies
// base. now is the clock that dates new withdrawal addresses; nil means
// time.Now.
func NewOverlay(st store.Store, base map[string]Definition, now func() time.Time) *Overlay {
	if now == nil {
		now = time.Now
	}
	return &Overlay{st: st, base: maps.Clone(base), now: now}
}

func (o *Overlay) records(ctx context.Context) (map[string]overlayRecord, error) {
	if o == nil {
		return nil, errNoOverlay
	}
	keys, err := o.st.List(ctx, overlayPrefix)
	if err != nil {
		return nil, fmt.Errorf("policy overlay: %w", err)
	}
	out := map[string]overlayRecord{}
	for _, k := range keys {
		b, err := o.st.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("policy overlay: %w", err)
		}
		var r overlayRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("policy overlay %s: %w", k, err)
		}
		out[strings.TrimPrefix(k, overlayPrefix)] = r
	}
	return out, nil
}

// Definitions returns the effective policies: the configured ones with the
// overlay applied.
func (o *Overlay) Definitions(ctx context.Context) (map[string]Definition, error) {
	recs, err := o.records(ctx)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(o.base)
	if out == nil {
		out = map[string]Definition{}
	}
	for name, r := range recs {
		if r.Deleted {
			delete(out, name)
		} else {
			out[name] = r.Definition
		}
	}
	return out, nil
}

// Compiled compiles the effective policies.
func (o *Overlay) Compiled(ctx context.Context) (map[string]*Policy, error) {
	defs, err := o.Definitions(ctx)
	if err != nil {
		return nil, err
	}
	return CompileAll(defs)
}

// Source says where the effective policy name comes from: "config",
// "overlay", or "" when there is none.
func (o *Overlay) Source(ctx context.Context, name string) (string, error) {
	recs, err := o.records(ctx)
	if err != nil {
		return "", err
	}
	if r, ok := recs[name]; ok {
		if r.Deleted {
			return "", nil
		}
		return "overlay", nil
	}
	if _, ok := o.base[name]; ok {
		return "config", nil
	}
	return "", nil
}

// ParseDefinition reads one policy from TOML text with the loader's
// strictness: the text is a policy file holding exactly the table
// [policy.NAME] (unknown keys are errors naming their line), and the
// policy must compile.
func ParseDefinition(name string, text []byte) (Definition, error) {
	var f File
	md, err := toml.NewDecoder(bytes.NewReader(text)).Decode(&f)
	if err != nil {
		return Definition{}, err
	}
	if err := UndecodedError(md, text); err != nil {
		return Definition{}, err
	}
	d, ok := f.Policy[name]
	if !ok || len(f.Policy) != 1 {
		return Definition{}, fmt.Errorf("the text must hold exactly one table, [policy.%s]", name)
	}
	if _, err := Compile(name, d); err != nil {
		return Definition{}, err
	}
	return d, nil
}

// FormatDefinition writes d as the policy file text that ParseDefinition
// reads.
func FormatDefinition(name string, d Definition) string {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(File{Policy: map[string]Definition{name: d}}); err != nil {
		return fmt.Sprintf("# cannot encode: %v\n", err)
	}
	return buf.String()
}

// Change is a prepared edit of one policy: what it was, what it becomes,
// and what about it widens what clients may do. Handlers use the
// classification to ask for step-up and approvals.
type Change struct {
	Name   string      `json:"name"`
	Before *Definition `json:"-"` // nil: the policy is new
	After  *Definition `json:"-"` // nil: the policy is deleted
	// Diff is a line diff of the policy file text, "-" and "+" lines.
	Diff string `json:"diff"`
	// Digest identifies After (SHA-256 of its text, with the dates of new
	// addresses left out since they follow the clock), so that an approval
	// of this change cannot be used for another.
	Digest string `json:"digest"`
	// EnablesWithdraw is set when After has the withdraw scope and Before
	// did not (or did not exist).
	EnablesWithdraw bool `json:"enables_withdraw,omitempty"`
	// AddedAddresses are withdrawal addresses After lists that Before did
	// not; their added_at is set to the time of the change.
	AddedAddresses []AddressDef `json:"added_addresses,omitempty"`
	// Raised names each cap or limit the change raises or removes, and each
	// restriction it widens.
	Raised []string `json:"raised,omitempty"`
}

// Created reports whether the change adds a policy.
func (c Change) Created() bool { return c.Before == nil && c.After != nil }

// Deleted reports whether the change removes a policy.
func (c Change) Deleted() bool { return c.After == nil }

// Widens reports whether the change lets clients do anything they could
// not do before: such changes need a step-up.
func (c Change) Widens() bool {
	return c.Created() || c.EnablesWithdraw || len(c.AddedAddresses) > 0 || len(c.Raised) > 0
}

// Prepare computes the change that sets policy name to next (nil deletes
// it) and validates the result. Withdrawal addresses that are new get the
// current time as added_at, whatever next says, so that the cool-down
// cannot be dodged by back-dating; addresses kept keep their date.
func (o *Overlay) Prepare(ctx context.Context, name string, next *Definition) (Change, error) {
	if !validName(name) {
		return Change{}, fmt.Errorf("policy name %q: letters, digits, '-', '_' and '.'", name)
	}
	defs, err := o.Definitions(ctx)
	if err != nil {
		return Change{}, err
	}
	c := Change{Name: name}
	if d, ok := defs[name]; ok {
		c.Before = &d
	}
	if next == nil {
		if c.Before == nil {
			return Change{}, ErrNoPolicy
		}
	} else {
		after := cloneDefinition(*next)
		now := o.now().UTC().Truncate(time.Second)
		var before []AddressDef
		if c.Before != nil {
			before = c.Before.Withdraw.Addresses
		}
		for i := range after.Withdraw.Addresses {
			a := &after.Withdraw.Addresses[i]
			if j := slices.IndexFunc(before, func(b AddressDef) bool { return sameAddress(a, &b) }); j >= 0 {
				a.AddedAt = before[j].AddedAt
				continue
			}
			a.AddedAt = now
			c.AddedAddresses = append(c.AddedAddresses, *a)
		}
		if _, err := Compile(name, after); err != nil {
			return Change{}, err
		}
		c.After = &after
		c.EnablesWithdraw = slices.Contains(after.Scopes, "withdraw") && (c.Before == nil || !slices.Contains(c.Before.Scopes, "withdraw"))
		if c.Before != nil {
			c.Raised = raised(c.Before, &after)
		}
	}
	var beforeText, afterText string
	if c.Before != nil {
		beforeText = FormatDefinition(name, *c.Before)
	}
	if c.After != nil {
		afterText = FormatDefinition(name, *c.After)
	}
	c.Diff = lineDiff(beforeText, afterText)
	c.Digest = digestOf(name, c.After, c.AddedAddresses)
	return c, nil
}

// Apply stores a prepared change, made by by, and returns the compiled
// effective policies. It refuses (ErrConflict) when the policy is no longer
// what Prepare saw.
func (o *Overlay) Apply(ctx context.Context, c Change, by string) (map[string]*Policy, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	defs, err := o.Definitions(ctx)
	if err != nil {
		return nil, err
	}
	cur, ok := defs[c.Name]
	if ok != (c.Before != nil) || (ok && FormatDefinition(c.Name, cur) != FormatDefinition(c.Name, *c.Before)) {
		return nil, ErrConflict
	}
	r := overlayRecord{Updated: o.now().UTC(), By: by}
	if c.After == nil {
		r.Deleted = true
		delete(defs, c.Name)
	} else {
		r.Definition = *c.After
		defs[c.Name] = *c.After
	}
	compiled, err := CompileAll(defs)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := o.st.Put(ctx, overlayPrefix+c.Name, b); err != nil {
		return nil, fmt.Errorf("policy overlay: %w", err)
	}
	return compiled, nil
}

func sameAddress(a, b *AddressDef) bool {
	return strings.EqualFold(a.Asset, b.Asset) && strings.EqualFold(a.Network, b.Network) &&
		a.Address == b.Address && a.Memo == b.Memo
}

func cloneDefinition(d Definition) Definition {
	d.Scopes = slices.Clone(d.Scopes)
	d.Venues = slices.Clone(d.Venues)
	d.Endpoints = slices.Clone(d.Endpoints)
	d.Symbols = slices.Clone(d.Symbols)
	d.DenySymbols = slices.Clone(d.DenySymbols)
	d.OrderTypes = slices.Clone(d.OrderTypes)
	d.Sides = slices.Clone(d.Sides)
	d.Windows = slices.Clone(d.Windows)
	d.TradingHours = slices.Clone(d.TradingHours)
	d.SourceIPs = slices.Clone(d.SourceIPs)
	d.Withdraw.Addresses = slices.Clone(d.Withdraw.Addresses)
	d.Expressions = slices.Clone(d.Expressions)
	return d
}

// digestOf is the SHA-256 (hex) of after's text, with the added_at of the
// addresses in added cleared.
func digestOf(name string, after *Definition, added []AddressDef) string {
	text := ""
	if after != nil {
		d := cloneDefinition(*after)
		for i := range d.Withdraw.Addresses {
			a := &d.Withdraw.Addresses[i]
			if slices.ContainsFunc(added, func(b AddressDef) bool { return sameAddress(a, &b) }) {
				a.AddedAt = time.Time{}
			}
		}
		text = FormatDefinition(name, d)
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}
