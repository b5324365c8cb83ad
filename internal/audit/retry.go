package audit

import (
	"errors"
	"time"
)

// startRecovery starts the loop that brings a failed log back, unless it
// runs already, retrying is turned off or the log is closing.
func (l *Log) startRecovery() {
	if l.opts.RetryInterval < 0 {
		return
	}
	l.bgMu.Lock()
	defer l.bgMu.Unlock()
	select {
	case <-l.closing:
		return
	default:
	}
	if !l.recovering.CompareAndSwap(false, true) {
		return
	}
	l.bg.Add(1)
	go l.recoverLoop()
}

// recoverLoop retries Reopen with a doubling wait, bounded by
// maxRetryInterval, until it works, the log is healthy again (an operator
// called Reopen) or it is closed. Records acknowledged before the failure
// stay as they are: Reopen resumes the chain at the last durable record,
// and only after it has written and flushed space there.
func (l *Log) recoverLoop() {
	defer l.bg.Done()
	d := l.opts.RetryInterval
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(d)
		select {
		case <-l.closing:
			t.Stop()
			l.recovering.Store(false)
			return
		case <-t.C:
		}
		if l.failed.Load() == nil {
			break
		}
		err := l.Reopen()
		if err == nil {
			break
		}
		if errors.Is(err, ErrClosed) {
			l.recovering.Store(false)
			return
		}
		l.log.Debug("audit log still failing", "attempt", attempt, "err", err)
		d = min(2*d, maxRetryInterval)
	}
	l.recovering.Store(false)
	// It may have failed again between Reopen and here, while this loop
	// still ran and so could not be started anew.
	if l.failed.Load() != nil {
		l.startRecovery()
	}
}
