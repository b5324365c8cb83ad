package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/bitget"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/posture"
	"github.com/keywarden/keywarden/internal/rotation"
)

const bitgetSubUID = "58281113"

// bitgetSetup is a Bitget simulator with a main account's key (IP-bound to
// loopback) and a sub-account key made through the API, both in a CLI's
// vault as bitget/master and bitget/bot.
type bitgetSetup struct {
	c      *cli
	kit    *sim.Kit
	srv    *httptest.Server
	venue  *rotation.HTTPVenue
	master exchange.Credential
	old    exchange.Credential

	mu      sync.Mutex
	hang    func(*http.Request) bool // requests held until the client goes away or release
	held    chan string              // the path of each held request
	release chan struct{}
}

func newBitgetSetup(t *testing.T) *bitgetSetup {
	t.Helper()
	b := &bitgetSetup{kit: sim.NewKit(), held: make(chan string, 4), release: make(chan struct{})}
	simH := bitget.NewSimulator(b.kit)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		hang := b.hang != nil && b.hang(r)
		b.mu.Unlock()
		if hang {
			// read the body: the server notices a closed connection only then
			_, _ = io.Copy(io.Discard, r.Body)
			b.held <- r.URL.Path
			select {
			case <-r.Context().Done():
			case <-b.release:
			}
			return
		}
		simH.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.hang != nil {
			close(b.release)
			b.hang = nil
		}
	})
	u, _ := url.Parse(b.srv.URL)
	b.venue = &rotation.HTTPVenue{Venue: bitget.New(u), Client: b.srv.Client()}
	b.master = exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "bg_master", Secret: exchange.Secret("master-" + marker), Passphrase: exchange.Secret("MasterPass1")}
	b.kit.AddAccount(sim.Account{Key: b.master, Permissions: map[string]bool{"read": true, "admin": true}, IPs: []string{"127.0.0.1"}})
	old, err := b.venue.CreateKey(context.Background(), &b.master, exchange.KeySpec{Label: "kw-old", SubAccount: bitgetSubUID, Permissions: []string{"spot_trade"}})
	if err != nil {
		t.Fatal(err)
	}
	b.old = *old

	b.c = newCLI(t)
	cfg, _ := os.ReadFile(b.c.config)
	writeFile(t, b.c.config, string(cfg)+"\n[[venue]]\nname = \"bitget\"\nupstream = \""+b.srv.URL+"\"\n", 0o600)
	b.c.ok("", "operator", "init")
	b.c.ok("api_key=bg_master\nsecret=master-"+marker+"\npassphrase=MasterPass1\n", "key", "add", "--exchange", "bitget", "--name", "master",
		"--scopes", "read,account-admin", "--stdin")
	b.c.ok("api_key="+old.APIKey+"\nsecret="+string(old.Secret)+"\npassphrase="+string(old.Passphrase)+"\n", "key", "add",
		"--exchange", "bitget", "--name", "bot", "--account", bitgetSubUID, "--scopes", "read,trade", "--stdin")
	return b
}

func (b *bitgetSetup) works(c exchange.Credential) bool {
	_, err := b.venue.Inspect(context.Background(), &c)
	return err == nil
}

// keys lists the sub-account's keys at the simulator: key -> "label perms ips".
func (b *bitgetSetup) keys(t *testing.T) map[string]string {
	t.Helper()
	r := bitget.ListKeysRequest(bitgetSubUID)
	if err := b.venue.Venue.Signer.Sign(r, &b.master, time.Now()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(r.Method, b.srv.URL+r.Path+"?"+r.RawQuery, nil)
	req.Header = r.Header
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		Data []struct {
			Key   string   `json:"subAccountApiKey"`
			Label string   `json:"label"`
			Perms []string `json:"permList"`
			IPs   []string `json:"ipList"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("list keys: %s", body)
	}
	out := map[string]string{}
	for _, k := range rep.Data {
		out[k.Key] = k.Label + " " + strings.Join(k.Perms, ",") + " " + strings.Join(k.IPs, ",")
	}
	return out
}

// newKey returns the one key at the simulator that is not the old one.
func (b *bitgetSetup) newKey(t *testing.T) exchange.Credential {
	t.Helper()
	var found []string
	for k := range b.keys(t) {
		if k != b.old.APIKey {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("keys made by the rotation = %v, want one", found)
	}
	acc, ok := b.kit.Account(found[0])
	if !ok {
		t.Fatalf("the new key %s is not an account", found[0])
	}
	return acc.Key
}

var bitgetRotateArgs = []string{"key", "rotate", "bitget/bot", "--permission", "spot_trade", "--sub-account", bitgetSubUID, "--manager", "bitget/master"}

// checkRotated checks the state after a finished rotation of bitget/bot.
func (b *bitgetSetup) checkRotated(t *testing.T) {
	t.Helper()
	nk := b.newKey(t)
	if !b.works(nk) || b.works(b.old) {
		t.Errorf("after rotation: new key works %v, old key works %v; want true, false", b.works(nk), b.works(b.old))
	}
	if got, want := b.keys(t)[b.old.APIKey], "kw-neutralised  "+bitget.NeutralIP; got != want {
		t.Errorf("old key at the venue = %q, want %q", got, want)
	}
	events := b.c.ok("", "audit", "search")
	for _, step := range []string{"started", "created", "verified", "switched", "done"} {
		if !strings.Contains(events, "event      key.rotate."+step+" actor=cli") {
			t.Errorf("audit log lacks key.rotate.%s:\n%s", step, events)
		}
	}
	b.c.ok("", "audit", "verify")
	// the vault signs with the new key: key audit reaches the venue with it
	out, _, _ := b.c.run("", "key", "audit", "bitget/bot", "--json")
	var entries []posture.KeyEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 1 || entries[0].Posture == nil || !entries[0].Posture.CanTrade {
		t.Errorf("key audit after rotate = %q, %v, want the new trading key inspected", out, err)
	}
	// the new key's passphrase and secret were never printed
	for _, o := range b.c.outputs {
		if strings.Contains(o, string(nk.Passphrase)) || strings.Contains(o, string(nk.Secret)) {
			t.Errorf("an output shows the new key's passphrase or secret:\n%s", o)
		}
	}
}

// TestKeyRotateRevokeBitget rotates a Bitget sub-account key through the
// CLI (the main account's key manages it), then revokes the new key with
// --at-venue, which neutralises it and says so.
func TestKeyRotateRevokeBitget(t *testing.T) {
	b := newBitgetSetup(t)
	if out := b.c.ok("", bitgetRotateArgs...); !strings.Contains(out, "Rotation of bitget/bot: done") {
		t.Errorf("key rotate = %q, want done", out)
	}
	b.checkRotated(t)
	nk := b.newKey(t)

	// without the main account's key, Bitget cannot neutralise a key:
	// revoke says exactly that, and the key is still disabled locally
	spare, err := b.venue.CreateKey(context.Background(), &b.master, exchange.KeySpec{Label: "kw-spare", SubAccount: bitgetSubUID, Permissions: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	b.c.ok("api_key="+spare.APIKey+"\nsecret="+string(spare.Secret)+"\npassphrase="+string(spare.Passphrase)+"\n", "key", "add",
		"--exchange", "bitget", "--name", "spare", "--account", bitgetSubUID, "--scopes", "read", "--stdin")
	msg := b.c.fails("could not be deleted at bitget", "", "key", "revoke", "bitget/spare", "--reason", "test", "--at-venue")
	if !strings.Contains(msg, "Bitget has no delete call") {
		t.Errorf("revoke without the main key = %q, want it to say Bitget has no delete call", msg)
	}
	if !b.works(*spare) {
		t.Errorf("a refused neutralisation changed the key at the venue")
	}
	out := b.c.ok("", "key", "revoke", "bitget/bot", "--reason", "bot host compromised", "--at-venue",
		"--manager", "bitget/master", "--sub-account", bitgetSubUID)
	for _, want := range []string{"Revoked bitget/bot", "bitget/bot: neutralised at Bitget", "192.0.2.1", "delete it in Bitget's API key management page"} {
		if !strings.Contains(out, want) {
			t.Errorf("key revoke = %q, want %q", out, want)
		}
	}
	if strings.Contains(out, "Deleted") {
		t.Errorf("key revoke = %q: says deleted, but Bitget keys are only neutralised", out)
	}
	if b.works(nk) {
		t.Errorf("the revoked key still works at the venue")
	}
}

const bitgetKillEnv = "KEYWARDEN_TEST_BITGET_ROTATE_CONFIG"

// TestKeyRotateBitgetKilled kills a keywarden key rotate process (SIGKILL)
// while it waits on the venue at three points, then runs the same command
// again: the rotation resumes from the persisted step and finishes with one
// new key, the old one neutralised.
func TestKeyRotateBitgetKilled(t *testing.T) {
	if cfg := os.Getenv(bitgetKillEnv); cfg != "" {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return cfg
			}
			return ""
		}
		err := runIO(context.Background(), append([]string{"keywarden"}, bitgetRotateArgs...), getenv, strings.NewReader(""), io.Discard, io.Discard)
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("starts keywarden processes")
	}
	tests := []struct {
		name string
		hold func(*http.Request) bool
		step string // the persisted step when the process dies
	}{
		{"creating the new key", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "create-virtual-subaccount-apikey") }, "started"},
		{"verifying the new key", func(r *http.Request) bool {
			return r.URL.Path == "/api/v2/spot/account/info"
		}, "created"},
		{"neutralising the old key", func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "modify-virtual-subaccount-apikey") }, "switched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBitgetSetup(t)
			b.mu.Lock()
			b.hang = tt.hold
			b.mu.Unlock()
			cmd := exec.Command(os.Args[0], "-test.run=^TestKeyRotateBitgetKilled$")
			cmd.Env = append(os.Environ(), bitgetKillEnv+"="+b.c.config)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-b.held:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("the rotate process never reached the venue call: %s", stderr.String())
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			b.mu.Lock()
			b.hang = nil
			close(b.release)
			b.mu.Unlock()

			// the audit log says how far the killed process got
			events := b.c.ok("", "audit", "search")
			if !strings.Contains(events, "key.rotate."+tt.step) || strings.Contains(events, "key.rotate.done") {
				t.Errorf("audit log after the kill lacks key.rotate.%s or already has done:\n%s", tt.step, events)
			}
			if out := b.c.ok("", bitgetRotateArgs...); !strings.Contains(out, "Rotation of bitget/bot: done") {
				t.Errorf("key rotate after the kill = %q, want done", out)
			}
			b.checkRotated(t)
		})
	}
}
