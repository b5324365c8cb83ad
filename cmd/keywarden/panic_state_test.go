package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// fakeSwitch behaves as the gateway's panic switch: the flag moves, then
// the hooks run.
type fakeSwitch struct {
	mu              sync.Mutex
	stopped         bool
	onStop, onResum []func()
}

func (s *fakeSwitch) Stop() {
	s.mu.Lock()
	s.stopped = true
	hooks := append([]func(){}, s.onStop...)
	s.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

func (s *fakeSwitch) Resume() {
	s.mu.Lock()
	s.stopped = false
	hooks := append([]func(){}, s.onResum...)
	s.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

func (s *fakeSwitch) Stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

func (s *fakeSwitch) OnStop(f func())   { s.mu.Lock(); s.onStop = append(s.onStop, f); s.mu.Unlock() }
func (s *fakeSwitch) OnResume(f func()) { s.mu.Lock(); s.onResum = append(s.onResum, f); s.mu.Unlock() }

// failingStore fails every call with err.
type failingStore struct {
	store.Store
	err error
}

func (f failingStore) Get(context.Context, string) ([]byte, error) { return nil, f.err }

func TestPanicStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	logs := &bytes.Buffer{}
	a := &app{log: slog.New(slog.NewTextHandler(logs, nil))}

	// First run: the switch starts off, is pulled, and the state is kept.
	sw := &fakeSwitch{}
	if err := a.keepPanicState(ctx, st, sw); err != nil {
		t.Fatal(err)
	}
	if sw.Stopped() {
		t.Fatal("a fresh store started the gateway stopped")
	}
	sw.Stop()
	// Restart: comes up stopped.
	sw2 := &fakeSwitch{}
	if err := a.keepPanicState(ctx, st, sw2); err != nil {
		t.Fatal(err)
	}
	if !sw2.Stopped() {
		t.Fatal("the panic switch did not survive a restart")
	}
	// Only a resume lifts it; the next restart comes up running.
	sw2.Resume()
	sw3 := &fakeSwitch{}
	if err := a.keepPanicState(ctx, st, sw3); err != nil {
		t.Fatal(err)
	}
	if sw3.Stopped() {
		t.Error("the gateway came up stopped after the panic was lifted")
	}
	if _, err := st.Get(ctx, panicStateKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("panic record after a resume: %v, want none", err)
	}

	// A record that does not decode: fail closed.
	if err := st.Put(ctx, panicStateKey, []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	sw4 := &fakeSwitch{}
	if err := a.keepPanicState(ctx, st, sw4); err != nil {
		t.Fatal(err)
	}
	if !sw4.Stopped() {
		t.Error("a damaged panic record started the gateway running")
	}

	// A store that cannot be read refuses the start.
	boom := errors.New("disk I/O error")
	if err := a.keepPanicState(ctx, failingStore{Store: st, err: boom}, &fakeSwitch{}); !errors.Is(err, boom) {
		t.Errorf("keepPanicState(unreadable store) = %v, want the store's error", err)
	}
}
