package audit

import (
	"bytes"
	"time"
)

// CommitObserver is told about every batch the log makes durable: how many
// records it held (checkpoints included) and how long its one write and one
// flush took. It runs on the log's writer goroutine, so it must be quick
// and must not call back into the log.
type CommitObserver func(records int, took time.Duration)

// ObserveCommits returns an Options.WrapFile that reports each commit to
// obs, wrapping next (nil: no other wrapper). The log writes a batch with
// one Write followed by one Sync, so the time from Write to the end of Sync
// is the commit latency and the lines written are the records. With
// Options.NoSync nothing is flushed and nothing is reported.
func ObserveCommits(next func(File) File, obs CommitObserver) func(File) File {
	return func(f File) File {
		if next != nil {
			f = next(f)
		}
		return &observedFile{File: f, obs: obs}
	}
}

// observedFile is used by the log's single writer goroutine only.
type observedFile struct {
	File
	obs     CommitObserver
	start   time.Time
	records int
}

func (f *observedFile) Write(p []byte) (int, error) {
	if f.records == 0 {
		f.start = time.Now()
	}
	f.records += bytes.Count(p, []byte{'\n'})
	return f.File.Write(p)
}

func (f *observedFile) Sync() error {
	err := f.File.Sync()
	if err == nil && f.records > 0 {
		f.obs(f.records, time.Since(f.start))
	}
	f.records = 0
	return err
}
