package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/store"
)

// panicStateKey holds the gateway's panic switch while it is on, so that a
// restarted keywarden comes up stopped (security.md F18). Only a Resume
// removes it, and every resume needs an operator's fresh TOTP code
// (security.md V11): the control socket's `keywarden gateway resume
// --operator NAME` (gateway.go), or the admin API's step-up resume.
const panicStateKey = "gateway/panic"

// panicState is the record under panicStateKey.
type panicState struct {
	Stopped bool      `json:"stopped"`
	Since   time.Time `json:"since"`
}

// panicSwitch is the gateway's panic switch (*gateway.Gateway).
type panicSwitch interface {
	Stop()
	Stopped() bool
	OnStop(func())
	OnResume(func())
}

// keepPanicState restores the panic switch from st (a record that does not
// decode counts as on: fail closed) and then persists every change of it.
// A store that cannot be read refuses the start. A failed write is logged;
// the switch itself is in memory and takes effect regardless.
func (a *app) keepPanicState(ctx context.Context, st store.Store, sw panicSwitch) error {
	b, err := st.Get(ctx, panicStateKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read the panic switch state: %w", err)
	default:
		var ps panicState
		if jerr := json.Unmarshal(b, &ps); jerr != nil || ps.Stopped {
			sw.Stop()
			a.log.Warn("gateway starts stopped: the panic switch was on when keywarden last ran; every request is refused until an operator resumes it",
				"since", ps.Since, "damaged_record", jerr != nil)
		}
	}
	var mu sync.Mutex
	save := func() {
		mu.Lock()
		defer mu.Unlock()
		// The hooks run after the switch moved; the state written is the
		// switch's state now, so concurrent Stop and Resume leave the
		// record as the last of them left the switch.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if sw.Stopped() {
			var rec []byte
			rec, err = json.Marshal(panicState{Stopped: true, Since: time.Now().UTC()})
			if err == nil {
				err = st.Put(ctx, panicStateKey, rec)
			}
		} else if err = st.Delete(ctx, panicStateKey); errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		if err != nil {
			a.log.Error("panic switch state not persisted: a restart may not keep it", "stopped", sw.Stopped(), "err", err)
		}
	}
	sw.OnStop(save)
	sw.OnResume(save)
	return nil
}
