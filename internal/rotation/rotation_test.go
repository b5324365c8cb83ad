package rotation

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/bybit"
	"github.com/keywarden/keywarden/internal/exchange/deribit"
	"github.com/keywarden/keywarden/internal/exchange/gate"
	"github.com/keywarden/keywarden/internal/exchange/kucoin"
	"github.com/keywarden/keywarden/internal/exchange/okx"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/store/memory"
	"github.com/keywarden/keywarden/internal/vault"
)

// records is an Auditor that keeps what it is given.
type records struct {
	actions []string
	fail    bool
}

func (a *records) Record(_ context.Context, action, key, detail string) error {
	if a.fail {
		return errors.New("audit sink down")
	}
	a.actions = append(a.actions, action+" "+key)
	return nil
}

// venueCase is a venue whose simulator creates and deletes keys.
type venueCase struct {
	name    string
	build   func(*url.URL) exchange.Venue
	sim     func(*sim.Kit) http.Handler
	perms   []string // the new key's permissions
	broader []string // permissions broader than the key's declared scopes
	sub     string
	manager bool     // a master key manages sub-account keys
	scopes  []string // the key's declared scopes; default read, trade
}

func (vc venueCase) declared() []string {
	if vc.scopes != nil {
		return vc.scopes
	}
	return []string{"read", "trade"}
}

func venueCases() []venueCase {
	return []venueCase{
		{name: "deribit", build: deribit.New, sim: func(k *sim.Kit) http.Handler { return deribit.NewSimulator(k) },
			perms: []string{"account:read_write", "trade:read_write", "wallet:none"}, broader: []string{"account:read_write", "trade:read_write", "wallet:read_write"}},
		{name: "bybit", build: bybit.New, sim: func(k *sim.Kit) http.Handler { return bybit.NewSimulator(k) },
			perms: []string{"Spot.SpotTrade", "ContractTrade.Order"}, broader: []string{"Spot.SpotTrade", "Wallet.AccountTransfer"}, sub: "100", manager: true},
		{name: "binance", build: binance.Spot, sim: func(k *sim.Kit) http.Handler { return binance.NewSimulator(k) },
			perms: []string{"canTrade"}, broader: []string{"canTrade", "canUniversalTransfer"}, sub: "bot1@example.com", manager: true},
		{name: "okx", build: okx.New, sim: func(k *sim.Kit) http.Handler { return okx.NewSimulator(k) },
			// OKX's trade permission also moves funds between the account's
			// own wallets, so a trading key there is declared for transfer.
			perms: []string{"read_only", "trade"}, broader: []string{"read_only", "trade", "withdraw"}, sub: "bot1", manager: true,
			scopes: []string{"read", "trade", "transfer"}},
		// KuCoin deletes a key only with its passphrase: the rotation
		// keeps the old key's passphrase sealed until then.
		{name: "kucoin", build: kucoin.New, sim: func(k *sim.Kit) http.Handler { return kucoin.NewSimulator(k) },
			perms: []string{"General", "Spot"}, broader: []string{"General", "Spot", "Withdrawal"}, sub: "bot1", manager: true},
		{name: "gate", build: gate.New, sim: func(k *sim.Kit) http.Handler { return gate.NewSimulator(k) },
			// Gate's self-inspection does not list a key's permissions, so a
			// broader key cannot be told apart there.
			perms: []string{"spot"}, sub: "10000002", manager: true},
	}
}

type env struct {
	vc      venueCase
	kit     *sim.Kit
	venue   *HTTPVenue
	store   *memory.Store
	vault   *vault.Vault
	audit   *records
	now     time.Time
	old     exchange.Credential
	logFrom int // kit log entries made by the setup
}

// isCreateKey says whether l is a venue's key-creation call.
func isCreateKey(l sim.Logged) bool {
	p := l.Path
	return strings.Contains(p, "create_api_key") || strings.Contains(p, "create-sub-api") ||
		l.Method == http.MethodPost && (strings.HasSuffix(p, "/subaccount/apikey") || strings.HasSuffix(p, "/keys") ||
			strings.HasSuffix(p, "/subAccountApi") || strings.HasSuffix(p, "/sub/api-key"))
}

func newEnv(t *testing.T, vc venueCase) *env {
	t.Helper()
	ctx := context.Background()
	kit := sim.NewKit()
	srv := httptest.NewServer(vc.sim(kit))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
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
	e := &env{vc: vc, kit: kit, venue: &HTTPVenue{Venue: vc.build(u), Client: srv.Client()}, store: st, vault: v, audit: &records{}, now: time.Now()}
	if vc.manager {
		master := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "masterkey", Secret: exchange.Secret("master-secret-0123456789"),
			Passphrase: exchange.Secret("master-passphrase-1")}
		kit.AddAccount(sim.Account{Key: master, Permissions: map[string]bool{"read": true, "admin": true}})
		if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: vc.name, Name: "master", APIKey: master.APIKey, Secret: master.Secret,
			Passphrase: master.Passphrase, Scopes: []string{"read", "account-admin"}}); err != nil {
			t.Fatal(err)
		}
		old, err := e.venue.CreateKey(ctx, &master, exchange.KeySpec{Label: "kw-old", SubAccount: vc.sub, Permissions: vc.perms})
		if err != nil {
			t.Fatalf("create the old key = %v", err)
		}
		e.old = *old
	} else {
		e.old = exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "oldclient", Secret: exchange.Secret("oldsecret-0123456789"), Account: "7"}
		kit.AddAccount(sim.Account{Key: e.old, Permissions: map[string]bool{"read": true, "trade": true, "admin": true}})
	}
	if _, err := v.AddKey(ctx, vault.KeyInput{Exchange: vc.name, Name: "bot", Account: e.old.Account, APIKey: e.old.APIKey, Secret: e.old.Secret,
		Passphrase: e.old.Passphrase, Scopes: vc.declared()}); err != nil {
		t.Fatal(err)
	}
	e.logFrom = len(kit.Log())
	return e
}

func (e *env) options(hook func(Step) error) Options {
	o := Options{Store: e.store, Vault: e.vault, Audit: e.audit, Now: func() time.Time { return e.now },
		Permissions: e.vc.perms, SubAccount: e.vc.sub, AfterStep: hook}
	if e.vc.manager {
		o.Manager = e.vc.name + "/master"
	}
	return o
}

func (e *env) rotator(t *testing.T, hook func(Step) error) *Rotator {
	t.Helper()
	r, err := New(e.options(hook))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// works says whether the venue accepts key.
func (e *env) works(key *exchange.Credential) bool {
	_, err := e.venue.Inspect(context.Background(), key)
	return err == nil
}

// checkRotated checks the end state at the venue and in the vault.
func (e *env) checkRotated(t *testing.T, r *Rotator) {
	t.Helper()
	ctx := context.Background()
	ex := e.vc.name
	st, err := r.Load(ctx, ex, "bot")
	if err != nil || st.Step != StepDone {
		t.Fatalf("Load = %+v, %v, want step done", st, err)
	}
	c, err := e.vault.Credential(ctx, ex, "bot")
	if err != nil {
		t.Fatalf("Credential = %v", err)
	}
	if c.APIKey == e.old.APIKey {
		t.Errorf("vault still signs with the old key")
	}
	if !e.works(c) {
		t.Errorf("the vault's new key is refused by the venue")
	}
	if e.works(&e.old) {
		t.Errorf("the old key still works at the venue")
	}
	created := 0
	for _, l := range e.kit.Log()[e.logFrom:] {
		if isCreateKey(l) && l.Verified && l.Error == "" {
			created++
		}
	}
	if created != 1 {
		t.Errorf("keys created at the venue = %d, want 1", created)
	}
	if _, err := e.vault.Secret(ctx, secretKind, ex+".bot"); err == nil {
		t.Errorf("the pending new key is still in the vault after the rotation")
	}
	if _, err := e.vault.Secret(ctx, oldPassKind, ex+".bot"); err == nil {
		t.Errorf("the old key's passphrase is still in the vault after the rotation")
	}
	info, _ := e.vault.Key(ctx, ex, "bot")
	if want := strings.Join(e.vc.declared(), ","); strings.Join(info.Scopes, ",") != want {
		t.Errorf("scopes after rotation = %v, want %s", info.Scopes, want)
	}
}

func TestRotate(t *testing.T) {
	for _, vc := range venueCases() {
		t.Run(vc.name, func(t *testing.T) {
			e := newEnv(t, vc)
			r := e.rotator(t, nil)
			st, err := r.Start(context.Background(), e.venue, vc.name, "bot")
			if err != nil {
				t.Fatalf("Start = %v", err)
			}
			if st.Step != StepDone {
				t.Errorf("Start step = %s, want done (no grace)", st.Step)
			}
			e.checkRotated(t, r)
			id := vc.name + "/bot"
			want := []string{"key.rotate.started " + id, "key.rotate.created " + id, "key.rotate.verified " + id, "key.rotate.switched " + id, "key.rotate.done " + id}
			if !slices.Equal(e.audit.actions, want) {
				t.Errorf("audit = %v, want %v", e.audit.actions, want)
			}
		})
	}
}

// TestCrashResume stops the rotation right after each step is persisted,
// as a crash would, then resumes it with a fresh Rotator.
func TestCrashResume(t *testing.T) {
	for _, vc := range venueCases() {
		for _, crashAt := range []Step{StepStarted, StepCreated, StepVerified, StepSwitched} {
			t.Run(vc.name+"/"+string(crashAt), func(t *testing.T) {
				e := newEnv(t, vc)
				crash := errors.New("crash")
				r := e.rotator(t, func(s Step) error {
					if s == crashAt {
						return crash
					}
					return nil
				})
				st, err := r.Start(context.Background(), e.venue, vc.name, "bot")
				if !errors.Is(err, crash) || st.Step != crashAt {
					t.Fatalf("Start = %+v, %v, want a crash at %s", st, err, crashAt)
				}
				if _, err := e.rotator(t, nil).Start(context.Background(), e.venue, vc.name, "bot"); err == nil {
					t.Errorf("Start over an unfinished rotation = nil error, want refusal")
				}
				// bots keep working between the crash and the resume
				c, err := e.vault.Credential(context.Background(), vc.name, "bot")
				if err != nil || !e.works(c) {
					t.Errorf("the vault's key after a crash at %s does not work: %v", crashAt, err)
				}
				r2 := e.rotator(t, nil)
				if _, err := r2.Resume(context.Background(), e.venue, vc.name, "bot"); err != nil {
					t.Fatalf("Resume = %v", err)
				}
				e.checkRotated(t, r2)
			})
		}
	}
}

func TestGracePeriod(t *testing.T) {
	for _, vc := range venueCases() {
		t.Run(vc.name, func(t *testing.T) {
			e := newEnv(t, vc)
			o := e.options(nil)
			o.Grace = time.Hour
			r, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			st, err := r.Start(context.Background(), e.venue, vc.name, "bot")
			if err != nil || st.Step != StepSwitched {
				t.Fatalf("Start = %+v, %v, want switched", st, err)
			}
			if !e.works(&e.old) {
				t.Errorf("the old key stopped working during the grace period")
			}
			if st, err := r.Resume(context.Background(), e.venue, vc.name, "bot"); err != nil || st.Step != StepSwitched {
				t.Errorf("Resume within grace = %+v, %v, want still switched", st, err)
			}
			e.now = e.now.Add(2 * time.Hour)
			if _, err := r.Resume(context.Background(), e.venue, vc.name, "bot"); err != nil {
				t.Fatalf("Resume after grace = %v", err)
			}
			e.checkRotated(t, r)
		})
	}
}

func TestRefusals(t *testing.T) {
	for _, vc := range venueCases() {
		tests := []struct {
			name  string
			perms []string
			audit bool // audit sink down
		}{
			{"new key broader than declared", vc.broader, false},
			{"audit down", vc.perms, true},
		}
		for _, tt := range tests {
			t.Run(vc.name+"/"+tt.name, func(t *testing.T) {
				if tt.perms == nil {
					t.Skipf("%s's self-inspection does not list permissions", vc.name)
				}
				e := newEnv(t, vc)
				e.audit.fail = tt.audit
				o := e.options(nil)
				o.Permissions = tt.perms
				r, err := New(o)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Start(context.Background(), e.venue, vc.name, "bot"); err == nil {
					t.Fatalf("Start = nil error, want refusal")
				} else if strings.Contains(err.Error(), string(e.old.Secret)) {
					t.Errorf("error %q shows a secret", err)
				}
				c, err := e.vault.Credential(context.Background(), vc.name, "bot")
				if err != nil || c.APIKey != e.old.APIKey {
					t.Errorf("Credential = %v, %v, want the old key kept", c, err)
				}
			})
		}
	}
}

func TestGuided(t *testing.T) {
	e := newEnv(t, venueCases()[0])
	// the operator made a key by hand at the venue
	nk := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "handmade", Secret: exchange.Secret("handmade-secret-99"), Account: "8"}
	e.kit.AddAccount(sim.Account{Key: nk, Permissions: map[string]bool{"read": true, "trade": true}})
	r := e.rotator(t, nil)
	st, err := r.StartGuided(context.Background(), e.venue, "deribit", "bot", &nk)
	if err != nil || st.Step != StepSwitched {
		t.Fatalf("StartGuided = %+v, %v, want switched awaiting confirmation", st, err)
	}
	if c, _ := e.vault.Credential(context.Background(), "deribit", "bot"); c == nil || c.APIKey != "handmade" {
		t.Errorf("Credential after guided switch = %v, want handmade", c)
	}
	if st, err = r.Confirm(context.Background(), "deribit", "bot"); err != nil || st.Step != StepDone {
		t.Errorf("Confirm = %+v, %v, want done", st, err)
	}
	if _, err := r.Confirm(context.Background(), "deribit", "bot"); err == nil {
		t.Errorf("Confirm twice = nil error, want one")
	}
	list, err := r.List(context.Background())
	if err != nil || len(list) != 1 || !list[0].Guided {
		t.Errorf("List = %v, %v, want one guided rotation", list, err)
	}
}
