package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store/memory"
)

// twoClocks is a wall clock that can be set (back or forward) and a
// monotonic clock that only ever advances, as the kernel keeps them.
type twoClocks struct {
	wall time.Time
	mono time.Duration
}

func (c *twoClocks) now() time.Time           { return c.wall }
func (c *twoClocks) elapsed() time.Duration   { return c.mono }
func (c *twoClocks) advance(d time.Duration)  { c.wall, c.mono = c.wall.Add(d), c.mono+d }
func (c *twoClocks) setWall(by time.Duration) { c.wall = c.wall.Add(by) }
func (c *twoClocks) registry(o Options) *Registry {
	o.Now, o.Elapsed = c.now, c.elapsed
	return New(o)
}

// TestFault_F11_CredentialTTLNeverLengthens sets keywarden's wall clock
// back and forward by 30 s while a credential lives: it still expires when
// its TTL has run on the monotonic clock, never later (spec/security.md
// F11). A jump forward ends it early.
func TestFault_F11_CredentialTTLNeverLengthens(t *testing.T) {
	const ttl = 10 * time.Minute
	tests := []struct {
		name string
		jump time.Duration
		// wantAt is how long after issue the credential stops working.
		wantAt time.Duration
	}{
		{"clock set back 30s", -30 * time.Second, ttl},
		{"clock set back 1h", -time.Hour, ttl},
		{"clock set forward 30s", 30 * time.Second, ttl - 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := &twoClocks{wall: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), mono: time.Hour}
			sec := &fakeSecrets{m: map[string][]byte{}}
			r := clk.registry(Options{Store: memory.New(), Secrets: sec})
			iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "p", TTL: ttl})
			if err != nil {
				t.Fatal(err)
			}
			clk.advance(time.Minute)
			clk.setWall(tt.jump)
			clk.advance(tt.wantAt - time.Minute - time.Second)
			if _, err := r.Lookup("binance", iss.ID); err != nil {
				t.Fatalf("Lookup() 1s before the end = %v, want the credential", err)
			}
			// A downgrade keeps the deadline.
			if _, _, err := r.SetReadOnly(ctx, "binance", iss.ID, "test", "clock"); err != nil {
				t.Fatal(err)
			}
			clk.advance(time.Second)
			if _, err := r.Lookup("binance", iss.ID); !errors.Is(err, ErrExpired) {
				t.Errorf("Lookup() %v after issue, wall clock moved %v = %v, want ErrExpired", tt.wantAt, tt.jump, err)
			}
		})
	}
}

// TestFault_F11_LoadedCredentialTTLNeverLengthens: a process that loads a
// credential fixes its remaining life on its own monotonic clock at load;
// the wall clock set back afterwards does not extend it.
func TestFault_F11_LoadedCredentialTTLNeverLengthens(t *testing.T) {
	ctx := context.Background()
	clk := &twoClocks{wall: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	st, sec := memory.New(), &fakeSecrets{m: map[string][]byte{}}
	iss, err := clk.registry(Options{Store: st, Secrets: sec}).Issue(ctx, IssueOptions{Venue: "okx", Key: "main", Policy: "p", TTL: 10 * time.Minute, Format: Format{Passphrase: true}})
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(4 * time.Minute)
	restarted := &twoClocks{wall: clk.wall} // a new process: its monotonic clock starts again
	r := restarted.registry(Options{Store: st, Secrets: sec})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	restarted.setWall(-30 * time.Second)
	restarted.advance(6*time.Minute - time.Second)
	if _, err := r.Lookup("okx", iss.ID); err != nil {
		t.Fatalf("Lookup() before the end = %v", err)
	}
	restarted.advance(time.Second)
	if _, err := r.Lookup("okx", iss.ID); !errors.Is(err, ErrExpired) {
		t.Errorf("Lookup() at the end, wall clock set back 30s = %v, want ErrExpired", err)
	}
}

// TestFault_F11_WrapTTLNeverLengthens: a wrapping token outlives its TTL
// on no wall clock set back: presented after it, it is refused as expired
// and the credential revoked; and a credential past its monotonic
// deadline is neither wrapped nor unwrapped.
func TestFault_F11_WrapTTLNeverLengthens(t *testing.T) {
	ctx := context.Background()
	clk := &twoClocks{wall: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	r := clk.registry(Options{Store: memory.New(), Secrets: &fakeSecrets{m: map[string][]byte{}}})
	iss, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "p", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.Wrap(ctx, "binance", iss.ID, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	clk.setWall(-30 * time.Second)
	clk.advance(4 * time.Minute)
	_, err = r.Unwrap(ctx, token)
	var m *WrapMisuse
	if !errors.As(err, &m) || !errors.Is(err, ErrWrapExpired) || !m.Revoked {
		t.Fatalf("Unwrap() 5 min after Wrap, wall clock set back 30s = %v, want ErrWrapExpired and the credential revoked", err)
	}
	if _, err := r.Lookup("binance", iss.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup() after the late unwrap = %v, want the credential gone", err)
	}

	// The credential's own deadline bounds a wrap too.
	iss2, err := r.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "p", TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	token2, err := r.Wrap(ctx, "binance", iss2.ID, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.setWall(-time.Hour)
	clk.advance(10 * time.Minute)
	if _, err := r.Wrap(ctx, "binance", iss2.ID, time.Minute); !errors.Is(err, ErrExpired) {
		t.Errorf("Wrap() of a credential past its TTL, wall clock set back = %v, want ErrExpired", err)
	}
	if got, err := r.Unwrap(ctx, token2); !errors.Is(err, ErrExpired) || got != nil {
		t.Errorf("Unwrap() of a credential past its TTL, wall clock set back = %v, want ErrExpired", err)
	}
}

// TestFault_F11_WrapMadeElsewhereTTLNeverLengthens: a token made by another
// process (keywarden client issue --wrap, before the server started) gets
// its monotonic deadline when the server loads the registry.
func TestFault_F11_WrapMadeElsewhereTTLNeverLengthens(t *testing.T) {
	ctx := context.Background()
	st, sec := memory.New(), &fakeSecrets{m: map[string][]byte{}}
	cli := &twoClocks{wall: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	cr := cli.registry(Options{Store: st, Secrets: sec})
	iss, err := cr.Issue(ctx, IssueOptions{Venue: "binance", Key: "main", Policy: "p", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	token, err := cr.Wrap(ctx, "binance", iss.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cli.advance(2 * time.Minute)
	srv := &twoClocks{wall: cli.wall}
	r := srv.registry(Options{Store: st, Secrets: sec})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	srv.setWall(-30 * time.Second)
	srv.advance(8 * time.Minute)
	_, err = r.Unwrap(ctx, token)
	if !errors.Is(err, ErrWrapExpired) {
		t.Fatalf("Unwrap() 10 min after Wrap, server clock set back 30s = %v, want ErrWrapExpired", err)
	}
}
