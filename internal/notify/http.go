package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/monitor"
)

// Header names of the signed generic webhook. The signature is
// hex(HMAC-SHA256(key, timestamp + "." + body)), so a receiver can refuse
// replays by checking the timestamp.
const (
	HeaderTimestamp = "X-Keywarden-Timestamp"
	HeaderSignature = "X-Keywarden-Signature"
)

var (
	_ monitor.Notifier = (*Webhook)(nil)
	_ monitor.Notifier = (*Slack)(nil)
	_ monitor.Notifier = (*PagerDuty)(nil)
	_ monitor.Notifier = (*Telegram)(nil)
)

// Webhook posts the alert as JSON with a signed body.
type Webhook struct {
	URL   string
	Key   exchange.Secret
	Retry Retry
	// Client defaults to one with a 15s timeout; Now to time.Now.
	Client *http.Client
	Now    func() time.Time
}

// Sign returns the signature header value for body sent at ts.
func Sign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is the signature of body sent at ts, in
// constant time.
func Verify(key []byte, ts string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(key, ts, body)), []byte(sig))
}

func (w *Webhook) Notify(ctx context.Context, a monitor.Alert) error {
	if len(w.Key) == 0 {
		return errors.New("webhook: no signing key")
	}
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	sig := Sign(w.Key, ts, body)
	if err := post(ctx, w.Client, w.Retry, w.URL, body, func(h http.Header) {
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
	}); err != nil {
		return errors.New("webhook: " + err.Error())
	}
	return nil
}

// Slack posts to a Slack incoming webhook, whose URL is the secret.
type Slack struct {
	URL    exchange.Secret
	Retry  Retry
	Client *http.Client
}

func (s *Slack) Notify(ctx context.Context, a monitor.Alert) error {
	body, err := json.Marshal(map[string]string{"text": text(a)})
	if err != nil {
		return err
	}
	if err := post(ctx, s.Client, s.Retry, strings.TrimSpace(string(s.URL)), body, nil); err != nil {
		return errors.New("slack: " + err.Error())
	}
	return nil
}

// PagerDutyURL is the Events API v2 endpoint.
const PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PagerDuty triggers a PagerDuty Events v2 alert, deduplicated by rule and
// subject.
type PagerDuty struct {
	RoutingKey exchange.Secret
	URL        string // default PagerDutyURL
	Retry      Retry
	Client     *http.Client
}

type pdEvent struct {
	RoutingKey  string    `json:"routing_key"`
	EventAction string    `json:"event_action"`
	DedupKey    string    `json:"dedup_key"`
	Payload     pdPayload `json:"payload"`
}

type pdPayload struct {
	Summary       string            `json:"summary"`
	Source        string            `json:"source"`
	Severity      string            `json:"severity"`
	Timestamp     string            `json:"timestamp"`
	Component     string            `json:"component,omitempty"`
	Class         string            `json:"class,omitempty"`
	CustomDetails map[string]string `json:"custom_details,omitempty"`
}

func (p *PagerDuty) Notify(ctx context.Context, a monitor.Alert) error {
	sev := "info"
	switch a.Severity {
	case monitor.SeverityCritical:
		sev = "critical"
	case monitor.SeverityWarning:
		sev = "warning"
	}
	ev := pdEvent{RoutingKey: strings.TrimSpace(string(p.RoutingKey)), EventAction: "trigger",
		DedupKey: "keywarden/" + a.Rule + "/" + a.Subject,
		Payload: pdPayload{Summary: truncate(a.Summary, 1024), Source: "keywarden", Severity: sev,
			Timestamp: a.Time.UTC().Format(time.RFC3339), Component: a.Subject, Class: a.Rule, CustomDetails: a.Evidence}}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	u := p.URL
	if u == "" {
		u = PagerDutyURL
	}
	if err := post(ctx, p.Client, p.Retry, u, body, nil); err != nil {
		return errors.New("pagerduty: " + err.Error())
	}
	return nil
}

// TelegramURL is the Bot API base.
const TelegramURL = "https://api.telegram.org"

// Telegram sends a message through a Telegram bot.
type Telegram struct {
	Token   exchange.Secret
	ChatID  string
	BaseURL string // default TelegramURL
	Retry   Retry
	Client  *http.Client
}

func (t *Telegram) Notify(ctx context.Context, a monitor.Alert) error {
	body, err := json.Marshal(map[string]any{"chat_id": t.ChatID, "text": truncate(text(a), 4096), "disable_web_page_preview": true})
	if err != nil {
		return err
	}
	base := t.BaseURL
	if base == "" {
		base = TelegramURL
	}
	u := strings.TrimSuffix(base, "/") + "/bot" + strings.TrimSpace(string(t.Token)) + "/sendMessage"
	if err := post(ctx, t.Client, t.Retry, u, body, nil); err != nil {
		return errors.New("telegram: " + err.Error())
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n])
	return string(r[:len(r)-1]) + "…"
}
