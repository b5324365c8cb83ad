package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
)

// failOn is an Auditor that refuses one action, as a crash between the
// venue call of a step and its persisted record would leave things.
type failOn struct {
	records
	action string
	done   bool
}

func (a *failOn) Record(ctx context.Context, action, key, detail string) error {
	if action == a.action && !a.done {
		a.done = true
		return errors.New("crash before the step was recorded")
	}
	return a.records.Record(ctx, action, key, detail)
}

// hlEnv is a Hyperliquid simulator with a master account whose agent
// (approved by the operator under "keywarden") is the vault key
// hyperliquid/bot; the master key is hyperliquid/master.
type hlEnv struct {
	kit    *sim.Kit
	sim    *hyperliquid.Simulator
	http   *HTTPVenue
	store  *memory.Store
	vault  *vault.Vault
	now    time.Time
	master *eip712.PrivateKey
	old    exchange.Credential
}

func newHLEnv(t *testing.T) *hlEnv {
	t.Helper()
	ctx := context.Background()
	e := &hlEnv{kit: sim.NewKit(), store: memory.New(), now: time.Now()}
	e.sim = hyperliquid.NewSimulator(e.kit)
	srv := httptest.NewServer(e.sim)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	e.http = &HTTPVenue{Venue: hyperliquid.New(u), Client: srv.Client()}
	var err error
	if e.vault, err = vault.New(vault.Options{Store: e.store}); err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := e.vault.Init(ctx, vault.InitOptions{Passphrase: []byte("rotation test passphrase"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.vault.Seal)
	if e.master, err = eip712.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	agent, err := eip712.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	m := e.master.Address().Hex()
	e.kit.AddAccount(sim.Account{Key: exchange.Credential{APIKey: m}})
	if err := e.sim.ApproveAgent(e.master.Address(), agent.Address(), "keywarden"); err != nil {
		t.Fatal(err)
	}
	e.old = exchange.Credential{Kind: exchange.KeyHMAC, APIKey: agent.Address().Hex(), Secret: exchange.Secret(agent.Hex()), Account: m}
	for _, k := range []vault.KeyInput{
		{Exchange: "hyperliquid", Name: "master", APIKey: m, Account: m, Secret: exchange.Secret(e.master.Hex()), Scopes: []string{"read", "trade", "withdraw", "account-admin"}},
		{Exchange: "hyperliquid", Name: "bot", APIKey: e.old.APIKey, Account: m, Secret: e.old.Secret, Scopes: []string{"read", "trade"}},
	} {
		if _, err := e.vault.AddKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *hlEnv) rotator(t *testing.T, audit Auditor, grace time.Duration, hook func(Step) error) *Rotator {
	t.Helper()
	r, err := New(Options{Store: e.store, Vault: e.vault, Audit: audit, Now: func() time.Time { return e.now },
		Grace: grace, Permissions: []string{"agent"}, Manager: "hyperliquid/master", AfterStep: hook})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// venue is a fresh HyperliquidVenue, as a restarted keywarden builds it:
// only the store remembers the used agent addresses.
func (e *hlEnv) venue() Venue { return VenueFor(e.http, e.store, e.vault, "hyperliquid", "bot") }

// works says whether the simulator accepts a noop signed by key.
func (e *hlEnv) works(key *exchange.Credential) bool {
	st, b, err := e.http.do(context.Background(), hyperliquid.NoopRequest(time.Now()), key)
	return err == nil && hyperliquid.ExchangeOK(st, b) == nil
}

// approvals lists the agent addresses the simulator approved through
// approveAgent requests it accepted.
func (e *hlEnv) approvals(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, l := range e.kit.Log() {
		var b struct {
			Action struct {
				Type         string `json:"type"`
				AgentAddress string `json:"agentAddress"`
			} `json:"action"`
		}
		if l.Path == "/exchange" && json.Unmarshal(l.Body, &b) == nil && b.Action.Type == "approveAgent" && l.Verified && l.Error == "" {
			out = append(out, b.Action.AgentAddress)
		}
	}
	return out
}

// checkRotated checks the end of a rotation: the vault signs with a new
// agent the simulator accepts, the old agent is no agent any more, the
// master holds exactly the new agent and the placeholder that took the old
// one's name (the operator's first agent name keeps its placeholder, so
// wantAgents is 2 after the first rotation, 3 after later ones), and every
// address approved is recorded as used.
func (e *hlEnv) checkRotated(t *testing.T, r *Rotator, old *exchange.Credential, wantAgents int) *exchange.Credential {
	t.Helper()
	ctx := context.Background()
	if st, err := r.Load(ctx, "hyperliquid", "bot"); err != nil || st.Step != StepDone {
		t.Fatalf("Load = %+v, %v, want step done", st, err)
	}
	c, err := e.vault.Credential(ctx, "hyperliquid", "bot")
	if err != nil {
		t.Fatal(err)
	}
	if strings.EqualFold(c.APIKey, old.APIKey) || !strings.EqualFold(c.Account, e.master.Address().Hex()) {
		t.Errorf("vault key = %s of %s, want a new agent of the master", c.APIKey, c.Account)
	}
	if !e.works(c) {
		t.Errorf("the new agent's signature is refused")
	}
	if e.works(old) {
		t.Errorf("the old agent's signature still works")
	}
	agents := e.sim.Agents(e.master.Address())
	if len(agents) != wantAgents || !slices.Contains(agents, strings.ToLower(c.APIKey)) || slices.Contains(agents, strings.ToLower(old.APIKey)) {
		t.Errorf("master's agents = %v, want %d: the new agent %s and placeholders, not the old %s", agents, wantAgents, c.APIKey, old.APIKey)
	}
	used, err := StoreUsedAgents{Store: e.store}.UsedAgentAddresses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range e.approvals(t) {
		if !slices.Contains(used, strings.ToLower(a)) {
			t.Errorf("approved agent %s is not recorded as used (%v)", a, used)
		}
	}
	if _, err := e.vault.Secret(ctx, secretKind, "hyperliquid.bot"); err == nil {
		t.Errorf("the pending agent key is still in the vault")
	}
	return c
}

// TestHyperliquidRotate rotates the agent twice: the first new agent is
// approved beside the operator's agent (which keeps working through the
// grace period) and the two names alternate, so no agent slot is spent.
func TestHyperliquidRotate(t *testing.T) {
	e := newHLEnv(t)
	ctx := context.Background()
	audit := &records{}
	r := e.rotator(t, audit, time.Hour, nil)
	st, err := r.Start(ctx, e.venue(), "hyperliquid", "bot")
	if err != nil || st.Step != StepSwitched {
		t.Fatalf("Start = %+v, %v, want switched", st, err)
	}
	if !e.works(&e.old) {
		t.Errorf("the old agent stopped working during the grace period")
	}
	e.now = e.now.Add(2 * time.Hour)
	if _, err := r.Resume(ctx, e.venue(), "hyperliquid", "bot"); err != nil {
		t.Fatalf("Resume after grace = %v", err)
	}
	first := e.checkRotated(t, r, &e.old, 2)
	want := []string{"started", "created", "verified", "switched", "done"}
	var got []string
	for _, a := range audit.actions {
		got = append(got, strings.TrimSuffix(strings.TrimPrefix(a, "key.rotate."), " hyperliquid/bot"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
	names := AgentNames("bot")
	if names != [2]string{"kw-bot-a", "kw-bot-b"} {
		t.Errorf("AgentNames(bot) = %v", names)
	}
	// The second rotation puts its agent under the other name and gives
	// the first agent's name to a placeholder. The operator's own name
	// keeps the placeholder the first rotation gave it.
	r2 := e.rotator(t, &records{}, 0, nil)
	if st, err := r2.Start(ctx, e.venue(), "hyperliquid", "bot"); err != nil || st.Step != StepDone {
		t.Fatalf("second Start = %+v, %v, want done", st, err)
	}
	second := e.checkRotated(t, r2, first, 3)
	if e.works(&e.old) {
		t.Errorf("the operator's agent works again")
	}
	info, err := hyperliquid.ParseExtraAgents(e.info(t, "extraAgents", e.master.Address()))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, a := range info {
		byName[a.Name] = strings.ToLower(a.Address)
	}
	if len(byName) != 3 || byName[names[1]] != strings.ToLower(second.APIKey) || byName[names[0]] == strings.ToLower(first.APIKey) {
		t.Errorf("agents by name = %v, want %s under %s and placeholders under %s and keywarden", byName, second.APIKey, names[1], names[0])
	}
	if n := len(e.approvals(t)); n != 4 {
		t.Errorf("approveAgent calls = %d, want 4 (two agents, two placeholders)", n)
	}
}

func (e *hlEnv) info(t *testing.T, typ string, user eip712.Address) (int, []byte) {
	t.Helper()
	st, b, err := e.http.do(context.Background(), hyperliquid.InfoRequest(typ, user), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, b
}

// TestHyperliquidCrashResume stops the rotation right after each step is
// persisted, and in the middle of the create and delete steps (after the
// venue call, before the record), then resumes with a fresh Rotator and a
// fresh venue whose only memory of used addresses is the store.
func TestHyperliquidCrashResume(t *testing.T) {
	crash := errors.New("crash")
	tests := []struct {
		name    string
		afterAt Step   // crash after this step is persisted
		failRec string // or: crash before this audit record
	}{
		{name: "after started", afterAt: StepStarted},
		{name: "after created", afterAt: StepCreated},
		{name: "after verified", afterAt: StepVerified},
		{name: "after switched", afterAt: StepSwitched},
		{name: "approved, not recorded", failRec: "key.rotate.created"},
		{name: "old agent replaced, not recorded", failRec: "key.rotate.done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHLEnv(t)
			ctx := context.Background()
			audit := &failOn{action: tt.failRec}
			r := e.rotator(t, audit, 0, func(s Step) error {
				if s == tt.afterAt {
					return crash
				}
				return nil
			})
			if _, err := r.Start(ctx, e.venue(), "hyperliquid", "bot"); err == nil {
				t.Fatalf("Start = nil error, want the crash")
			}
			// Bots keep signing between the crash and the resume.
			c, err := e.vault.Credential(ctx, "hyperliquid", "bot")
			if err != nil || !e.works(c) {
				t.Errorf("the vault's agent after the crash does not work: %v", err)
			}
			r2 := e.rotator(t, &records{}, 0, nil)
			if _, err := r2.Resume(ctx, e.venue(), "hyperliquid", "bot"); err != nil {
				t.Fatalf("Resume = %v", err)
			}
			e.checkRotated(t, r2, &e.old, 2)
			if tt.failRec == "key.rotate.created" {
				// The agent approved before the crash had its key lost; the
				// resumed create approved under the same name, replacing it.
				lost := e.approvals(t)[0]
				if st, b := e.info(t, "userRole", mustAddr(t, lost)); !strings.Contains(string(b), `"missing"`) {
					t.Errorf("userRole of the lost agent %s = %d %s, want missing", lost, st, b)
				}
			}
		})
	}
}

func mustAddr(t *testing.T, s string) eip712.Address {
	t.Helper()
	a, err := eip712.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestHyperliquidRotateRefusals: an agent cannot approve agents (no
// manager key), a master wallet is not rotated, and nothing is approved.
func TestHyperliquidRotateRefusals(t *testing.T) {
	e := newHLEnv(t)
	ctx := context.Background()
	r, err := New(Options{Store: e.store, Vault: e.vault, Audit: &records{}, Permissions: []string{"agent"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, e.venue(), "hyperliquid", "bot"); err == nil || !strings.Contains(err.Error(), "--manager") {
		t.Errorf("Start without a manager = %v, want a refusal naming --manager", err)
	}
	r2 := e.rotator(t, &records{}, 0, nil)
	mv := VenueFor(e.http, e.store, e.vault, "hyperliquid", "master")
	if _, err := r2.Start(ctx, mv, "hyperliquid", "master"); err == nil || !strings.Contains(err.Error(), "master wallet") {
		t.Errorf("Start on the master key = %v, want a refusal", err)
	}
	if n := len(e.approvals(t)); n != 0 {
		t.Errorf("approveAgent calls = %d, want none", n)
	}
	if c, _ := e.vault.Credential(ctx, "hyperliquid", "bot"); c == nil || c.APIKey != e.old.APIKey {
		t.Errorf("vault key changed after refusals")
	}
}

// TestStoreUsedAgents: recorded addresses survive a new StoreUsedAgents
// over the same store (a restart), and NewAgent records its address there
// before returning the request that approves it.
func TestStoreUsedAgents(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	k, req, err := hyperliquid.NewAgent(ctx, StoreUsedAgents{Store: st}, "kw-bot-a", hyperliquid.Mainnet, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	if !strings.Contains(string(req.Body), strings.ToLower(k.Address().Hex())) {
		t.Errorf("approveAgent body %s does not name the new agent", req.Body)
	}
	other, _ := eip712.GenerateKey()
	defer other.Zero()
	restarted := StoreUsedAgents{Store: st}
	for _, tt := range []struct {
		addr eip712.Address
		want bool
	}{{k.Address(), true}, {other.Address(), false}} {
		if got, err := restarted.Used(ctx, tt.addr); err != nil || got != tt.want {
			t.Errorf("Used(%s) = %v, %v, want %v", tt.addr.Hex(), got, err, tt.want)
		}
	}
	if list, err := restarted.UsedAgentAddresses(ctx); err != nil || !slices.Equal(list, []string{k.Address().Hex()}) {
		t.Errorf("UsedAgentAddresses = %v, %v", list, err)
	}
}
