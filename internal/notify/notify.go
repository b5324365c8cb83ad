// Package notify delivers monitor alerts to people: a generic webhook with an
// HMAC-SHA256-signed body, Slack incoming webhooks, PagerDuty Events v2,
// Telegram bots and SMTP email. Every notifier implements monitor.Notifier
// and retries transient failures (network errors, 429 and 5xx answers) a
// bounded number of times with exponential backoff.
//
// Notifiers are safe for concurrent use.
//
// Security: webhook URLs, signing keys, routing keys, bot tokens and SMTP
// passwords are secrets. They are held as exchange.Secret and never appear in
// errors, logs or String output; errors that would quote a secret-bearing
// URL are reduced to their cause.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/monitor"
)

// Retry bounds the attempts of one delivery.
type Retry struct {
	// Attempts is the total number of tries (default 4).
	Attempts int
	// Backoff is the wait before the second try; it doubles after every
	// failure up to MaxBackoff (defaults 500ms and 10s).
	Backoff, MaxBackoff time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 4
	}
	if r.Backoff <= 0 {
		r.Backoff = 500 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 10 * time.Second
	}
	return r
}

// do runs try until it succeeds, fails permanently, the attempts run out or
// ctx ends.
func (r Retry) do(ctx context.Context, try func() (retry bool, err error)) error {
	r = r.withDefaults()
	wait := r.Backoff
	var err error
	for i := 0; i < r.Attempts; i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			case <-t.C:
			}
			wait = min(2*wait, r.MaxBackoff)
		}
		var again bool
		if again, err = try(); err == nil {
			return nil
		}
		if !again {
			return err
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", r.Attempts, err)
}

// errStatus is a non-2xx answer.
type errStatus struct{ code int }

func (e errStatus) Error() string {
	return fmt.Sprintf("answered %d %s", e.code, http.StatusText(e.code))
}

// post sends body to u with headers, retrying transient failures. The URL
// is never quoted in the error it returns.
func post(ctx context.Context, hc *http.Client, r Retry, u string, body []byte, header func(http.Header)) error {
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return r.do(ctx, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return false, errors.New("bad notifier url")
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "keywarden")
		if header != nil {
			header(req.Header)
		}
		resp, err := hc.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return ctx.Err() == nil, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return false, nil
		}
		return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, errStatus{resp.StatusCode}
	})
}

// text is the one-paragraph human form of an alert.
func text(a monitor.Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[keywarden %s] %s: %s", strings.ToUpper(string(a.Severity)), a.Rule, a.Summary)
	fmt.Fprintf(&b, "\nsubject: %s\ntime: %s", a.Subject, a.Time.UTC().Format(time.RFC3339))
	for _, k := range sortedKeys(a.Evidence) {
		fmt.Fprintf(&b, "\n%s: %s", k, a.Evidence[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
