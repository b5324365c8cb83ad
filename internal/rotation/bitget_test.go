package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/bitget"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
)

// Bitget manages keys of virtual sub-accounts through the main account's
// key, which must have an IP allowlist. It has no delete call: the old key
// is neutralised (no permissions, an allowlist of an unroutable address).
const bitgetSub = "58281113"

// detailed is an Auditor that keeps each action with its detail.
type detailed struct{ lines []string }

func (a *detailed) Record(_ context.Context, action, key, detail string) error {
	a.lines = append(a.lines, action+" "+key+": "+detail)
	return nil
}

type bitgetEnv struct {
	*env
	srv    *httptest.Server
	master exchange.Credential
	notes  *detailed
}

func newBitgetEnv(t *testing.T) *bitgetEnv {
	t.Helper()
	ctx := context.Background()
	kit := sim.NewKit()
	srv := httptest.NewServer(bitget.NewSimulator(kit))
	t.Cleanup(srv.Close)
	st := memory.New()
	v, err := vault.New(vault.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	kdf := vault.MinKDF()
	if _, err := v.Init(ctx, vault.InitOptions{Passphrase: []byte("rotation test passphrase"), KDF: &kdf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Seal)
	vc := venueCase{name: "bitget", build: bitget.New, sim: func(k *sim.Kit) http.Handler { return bitget.NewSimulator(k) },
		perms: []string{"spot_trade"}, broader: []string{"spot_trade", "transfer"}, sub: bitgetSub, manager: true}
	e := &bitgetEnv{env: &env{vc: vc, kit: kit, store: st, vault: v, audit: &records{}, now: time.Now()}, srv: srv, notes: &detailed{}}
	e.venue = e.freshVenue()
	e.master = exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bg_master", Secret: exchange.Secret("master-secret-0123456789"),
		Passphrase: exchange.Secret("MasterPass1")}
	kit.AddAccount(sim.Account{Key: e.master, Permissions: map[string]bool{"read": true, "admin": true}, IPs: []string{"127.0.0.1"}})
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "bitget", Name: "master", APIKey: e.master.APIKey, Secret: e.master.Secret,
		Passphrase: e.master.Passphrase, Scopes: []string{"read", "account-admin"}}); err != nil {
		t.Fatal(err)
	}
	old, err := e.venue.CreateKey(ctx, &e.master, exchange.KeySpec{Label: "kw-old", SubAccount: bitgetSub, Permissions: vc.perms})
	if err != nil {
		t.Fatalf("create the old key = %v", err)
	}
	e.old = *old
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: "bitget", Name: "bot", Account: old.Account, APIKey: old.APIKey, Secret: old.Secret,
		Passphrase: old.Passphrase, Scopes: vc.declared()}); err != nil {
		t.Fatal(err)
	}
	e.logFrom = len(kit.Log())
	return e
}

// freshVenue is the venue as a new keywarden process builds it.
func (e *bitgetEnv) freshVenue() *HTTPVenue {
	u, _ := url.Parse(e.srv.URL)
	return &HTTPVenue{Venue: bitget.New(u), Client: e.srv.Client()}
}

func (e *bitgetEnv) rotator(t *testing.T, grace time.Duration, hook func(Step) error) *Rotator {
	t.Helper()
	o := e.options(hook)
	o.Audit, o.Grace = e.notes, grace
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// listed returns the sub-account's keys as the venue lists them.
func (e *bitgetEnv) listed(t *testing.T) map[string]string {
	t.Helper()
	st, b, err := e.venue.do(context.Background(), bitget.ListKeysRequest(bitgetSub), &e.master)
	if err != nil || st != http.StatusOK {
		t.Fatalf("list keys = %d %s %v", st, b, err)
	}
	var rep struct {
		Data []struct {
			Key   string   `json:"subAccountApiKey"`
			Label string   `json:"label"`
			Perms []string `json:"permList"`
			IPs   []string `json:"ipList"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range rep.Data {
		out[k.Key] = k.Label + " perms=" + strings.Join(k.Perms, ",") + " ips=" + strings.Join(k.IPs, ",")
	}
	return out
}

// checkBitgetRotated checks the end state: the vault signs with a new key
// and passphrase that work, the old key is neutralised and refused, one key
// was created, nothing is left pending, and the audit says the old key was
// neutralised, not deleted.
func (e *bitgetEnv) checkBitgetRotated(t *testing.T, r *Rotator) {
	t.Helper()
	ctx := context.Background()
	st, err := r.Load(ctx, "bitget", "bot")
	if err != nil || st.Step != StepDone {
		t.Fatalf("Load = %+v, %v, want step done", st, err)
	}
	c, err := e.vault.Credential(ctx, "bitget", "bot")
	if err != nil {
		t.Fatalf("Credential = %v", err)
	}
	if c.APIKey == e.old.APIKey || string(c.Passphrase) == string(e.old.Passphrase) || len(c.Passphrase) != 28 {
		t.Errorf("vault key after rotation: same key %v, same passphrase %v, passphrase length %d (want a new 28-character one)",
			c.APIKey == e.old.APIKey, string(c.Passphrase) == string(e.old.Passphrase), len(c.Passphrase))
	}
	if c.Account != bitgetSub {
		t.Errorf("new key's account = %q, want the sub-account %s", c.Account, bitgetSub)
	}
	if !e.works(c) {
		t.Errorf("the vault's new key is refused by the venue")
	}
	if e.works(&e.old) {
		t.Errorf("the old key still works at the venue")
	}
	keys := e.listed(t)
	if got, want := keys[e.old.APIKey], "kw-neutralised perms= ips="+bitget.NeutralIP; got != want {
		t.Errorf("old key at the venue = %q, want %q", got, want)
	}
	if got := keys[c.APIKey]; !strings.HasPrefix(got, "kw-bot-") || !strings.Contains(got, "perms=spot_trade ") {
		t.Errorf("new key at the venue = %q, want a kw-bot-<time> spot_trade key", got)
	}
	created := 0
	for _, l := range e.kit.Log()[e.logFrom:] {
		if l.Path == "/api/v2/user/create-virtual-subaccount-apikey" && l.Verified {
			created++
			if l.APIKey != e.master.APIKey {
				t.Errorf("a key was created with %s, want the main account's key", l.APIKey)
			}
		}
	}
	if created != 1 || len(keys) != 2 {
		t.Errorf("keys created at the venue = %d, listed = %d, want 1 and 2", created, len(keys))
	}
	if _, err := e.vault.Secret(ctx, secretKind, "bitget.bot"); err == nil {
		t.Errorf("the pending new key is still in the vault after the rotation")
	}
	if _, err := e.vault.Secret(ctx, oldPassKind, "bitget.bot"); err == nil {
		t.Errorf("the old key's passphrase is still in the vault after the rotation")
	}
	last := e.notes.lines[len(e.notes.lines)-1]
	if !strings.HasPrefix(last, "key.rotate.done bitget/bot: old key neutralised at Bitget") || strings.Contains(last, "deleted at the venue") {
		t.Errorf("last audit record = %q, want the old key neutralised", last)
	}
	// no secret in the audit records or in the persisted state
	stored, _ := e.store.Get(ctx, stateKey("bitget", "bot"))
	for _, s := range []string{string(c.Passphrase), string(c.Secret), string(e.old.Passphrase), string(e.old.Secret)} {
		if strings.Contains(strings.Join(e.notes.lines, "\n"), s) || strings.Contains(string(stored), s) {
			t.Errorf("a secret or passphrase shows in the audit records or the rotation state")
		}
	}
}

func TestBitgetRotate(t *testing.T) {
	e := newBitgetEnv(t)
	r := e.rotator(t, 0, nil)
	st, err := r.Start(context.Background(), e.venue, "bitget", "bot")
	if err != nil || st.Step != StepDone {
		t.Fatalf("Start = %+v, %v, want done", st, err)
	}
	e.checkBitgetRotated(t, r)
	var steps []string
	for _, l := range e.notes.lines {
		a, _, _ := strings.Cut(l, " ")
		steps = append(steps, a)
	}
	want := []string{"key.rotate.started", "key.rotate.created", "key.rotate.verified", "key.rotate.switched", "key.rotate.done"}
	if !slices.Equal(steps, want) {
		t.Errorf("audit = %v, want %v", steps, want)
	}
}

// TestBitgetCrashResume stops the rotation right after each step is
// persisted, as a crash would, then resumes it in a "new process": a fresh
// Rotator and a fresh venue (the key manager keeps nothing across).
func TestBitgetCrashResume(t *testing.T) {
	for _, crashAt := range []Step{StepStarted, StepCreated, StepVerified, StepSwitched} {
		t.Run(string(crashAt), func(t *testing.T) {
			e := newBitgetEnv(t)
			crash := errors.New("crash")
			r := e.rotator(t, 0, func(s Step) error {
				if s == crashAt {
					return crash
				}
				return nil
			})
			st, err := r.Start(context.Background(), e.venue, "bitget", "bot")
			if !errors.Is(err, crash) || st.Step != crashAt {
				t.Fatalf("Start = %+v, %v, want a crash at %s", st, err, crashAt)
			}
			if _, err := e.rotator(t, 0, nil).Start(context.Background(), e.freshVenue(), "bitget", "bot"); err == nil {
				t.Errorf("Start over an unfinished rotation = nil error, want refusal")
			}
			c, err := e.vault.Credential(context.Background(), "bitget", "bot")
			if err != nil || !e.works(c) {
				t.Errorf("the vault's key after a crash at %s does not work: %v", crashAt, err)
			}
			e.venue = e.freshVenue()
			r2 := e.rotator(t, 0, nil)
			if _, err := r2.Resume(context.Background(), e.venue, "bitget", "bot"); err != nil {
				t.Fatalf("Resume = %v", err)
			}
			e.checkBitgetRotated(t, r2)
		})
	}
}

func TestBitgetGracePeriod(t *testing.T) {
	e := newBitgetEnv(t)
	r := e.rotator(t, time.Hour, nil)
	st, err := r.Start(context.Background(), e.venue, "bitget", "bot")
	if err != nil || st.Step != StepSwitched {
		t.Fatalf("Start = %+v, %v, want switched", st, err)
	}
	if !e.works(&e.old) {
		t.Errorf("the old key stopped working during the grace period")
	}
	if st, err := r.Resume(context.Background(), e.venue, "bitget", "bot"); err != nil || st.Step != StepSwitched {
		t.Errorf("Resume within grace = %+v, %v, want still switched", st, err)
	}
	e.now = e.now.Add(2 * time.Hour)
	if _, err := r.Resume(context.Background(), e.freshVenue(), "bitget", "bot"); err != nil {
		t.Fatalf("Resume after grace = %v", err)
	}
	e.checkBitgetRotated(t, r)
}

func TestBitgetRefusals(t *testing.T) {
	tests := []struct {
		name   string
		perms  []string
		master bool // the main account's key manages the keys
		want   string
	}{
		{"new key broader than declared", []string{"spot_trade", "transfer"}, true, "new key refused"},
		{"withdraw never granted by API", []string{"spot_trade", "wallet_withdraw"}, true, "cannot be granted by API"},
		{"the key cannot manage itself", []string{"spot_trade"}, false, "create"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newBitgetEnv(t)
			o := e.options(nil)
			o.Permissions = tt.perms
			if !tt.master {
				o.Manager = ""
			}
			r, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Start(context.Background(), e.venue, "bitget", "bot")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start = %v, want an error with %q", err, tt.want)
			}
			c, err := e.vault.Credential(context.Background(), "bitget", "bot")
			if err != nil || c.APIKey != e.old.APIKey || !e.works(c) {
				t.Errorf("Credential = %v, %v, want the old key kept and working", c, err)
			}
		})
	}
}

// TestBitgetDeleteNeedsPassphrase: without the old key's passphrase (a
// rotation begun before it was kept), the old key cannot be neutralised
// and the rotation stays at "switched", saying why.
func TestBitgetDeleteNeedsPassphrase(t *testing.T) {
	e := newBitgetEnv(t)
	r := e.rotator(t, 0, func(s Step) error {
		if s == StepSwitched {
			return errors.New("crash")
		}
		return nil
	})
	if _, err := r.Start(context.Background(), e.venue, "bitget", "bot"); err == nil {
		t.Fatal("Start = nil error, want the crash")
	}
	if err := e.vault.DeleteSecret(context.Background(), oldPassKind, "bitget.bot"); err != nil {
		t.Fatal(err)
	}
	st, err := e.rotator(t, 0, nil).Resume(context.Background(), e.freshVenue(), "bitget", "bot")
	if err == nil || st.Step != StepSwitched || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("Resume = %+v, %v, want stuck at switched for want of the passphrase", st, err)
	}
	if !e.works(&e.old) {
		t.Errorf("the old key was changed although the rotation could not neutralise it")
	}
}
