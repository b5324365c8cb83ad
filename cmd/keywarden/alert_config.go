package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/monitor"
	"github.com/keywarden/keywarden/internal/notify"
)

// AlertsConfig is the [alerts] section: where monitor alerts go. Secrets
// (signing keys, Slack URLs, routing keys, bot tokens, SMTP passwords) are
// named by file (mode 0600 or stricter, relative to the config file), never
// written inline.
type AlertsConfig struct {
	// Cooldown suppresses repeats of one rule for one subject (default 10m);
	// MaxPerMinute bounds all alerts together (default 30).
	Cooldown     string `toml:"cooldown"`
	MaxPerMinute int    `toml:"max_per_minute"`
	// OnCritical is the automatic response to a critical alert whose rule
	// has no entry in Responses: one of the response actions (see
	// responses.go), "none" (the default) for nothing. Every response is
	// audited and recorded in the incident.
	OnCritical string `toml:"on_critical"`
	// Responses ([alerts.responses]) maps a monitor rule id to the
	// automatic response to its alerts, whatever their severity: "none",
	// "read-only", "suspend-client", "suspend-key", "panic-key",
	// "panic-venue" or "panic-all". An entry takes precedence over
	// OnCritical; "none" turns the response off for that rule.
	Responses map[string]string `toml:"responses"`
	// Thresholds tune the anomaly rules ([alerts.thresholds]); zero or
	// missing keys keep the defaults (docs/monitoring.md).
	Thresholds monitor.Thresholds `toml:"thresholds"`

	Webhook   []WebhookAlert   `toml:"webhook"`
	Slack     []SlackAlert     `toml:"slack"`
	PagerDuty []PagerDutyAlert `toml:"pagerduty"`
	Telegram  []TelegramAlert  `toml:"telegram"`
	Email     []EmailAlert     `toml:"email"`
}

// WebhookAlert posts alerts as JSON signed with HMAC-SHA256.
type WebhookAlert struct {
	URL     string `toml:"url"`
	KeyFile string `toml:"key_file"`
}

// SlackAlert posts to a Slack incoming webhook.
type SlackAlert struct {
	URLFile string `toml:"url_file"`
}

// PagerDutyAlert triggers PagerDuty Events v2 alerts.
type PagerDutyAlert struct {
	RoutingKeyFile string `toml:"routing_key_file"`
	URL            string `toml:"url"` // default the Events v2 endpoint
}

// TelegramAlert messages a chat through a bot.
type TelegramAlert struct {
	TokenFile string `toml:"token_file"`
	ChatID    string `toml:"chat_id"`
	BaseURL   string `toml:"base_url"` // default https://api.telegram.org
}

// EmailAlert sends mail by SMTP.
type EmailAlert struct {
	Addr         string   `toml:"addr"` // host:port
	From         string   `toml:"from"`
	To           []string `toml:"to"`
	Username     string   `toml:"username"`
	PasswordFile string   `toml:"password_file"`
}

// monitorOptions returns the monitor's dedup settings from the section.
func (c AlertsConfig) monitorOptions() (cooldown time.Duration, perMinute int, err error) {
	if c.Cooldown != "" {
		if cooldown, err = time.ParseDuration(c.Cooldown); err != nil || cooldown < 0 {
			return 0, 0, fmt.Errorf("alerts cooldown %q: want a duration like 10m", c.Cooldown)
		}
	}
	return cooldown, c.MaxPerMinute, nil
}

// onCritical returns the automatic response to critical alerts whose rule
// has no entry in [alerts.responses].
func (c AlertsConfig) onCritical() (string, error) {
	if c.OnCritical == "" {
		return respondNone, nil
	}
	if !slices.Contains(responseActions, c.OnCritical) {
		return "", fmt.Errorf("alerts on_critical %q: want one of %s", c.OnCritical, strings.Join(responseActions, ", "))
	}
	return c.OnCritical, nil
}

// responses checks [alerts.responses] and returns it with the "none"
// entries kept (they override on_critical). Errors name the file and
// line of the entry when it is known.
func (c AlertsConfig) responses(configPath string) (map[string]string, error) {
	var text []byte
	if configPath != "" {
		text, _ = os.ReadFile(configPath)
	}
	where := func(rule string) string {
		if configPath == "" {
			return "alerts.responses." + rule
		}
		if n := lineOf(text, toml.Key{"alerts", "responses", rule}); n > 0 {
			return fmt.Sprintf("%s:%d: alerts.responses.%s", configPath, n, rule)
		}
		return configPath + ": alerts.responses." + rule
	}
	rules := make([]string, 0, len(c.Responses))
	for r := range c.Responses {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	var errs []error
	out := make(map[string]string, len(c.Responses))
	for _, r := range rules {
		act := c.Responses[r]
		switch {
		case !slices.Contains(responseRules, r):
			errs = append(errs, fmt.Errorf("%s: unknown rule %q (rules: %s)", where(r), r, strings.Join(responseRules, ", ")))
		case !slices.Contains(responseActions, act):
			errs = append(errs, fmt.Errorf("%s: unknown action %q (actions: %s)", where(r), act, strings.Join(responseActions, ", ")))
		default:
			out[r] = act
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// validate checks the automatic responses ([alerts] on_critical and
// [alerts.responses]) of the configuration read from configPath;
// Config.Validate runs it.
func (c AlertsConfig) validate(configPath string) error {
	if _, err := c.onCritical(); err != nil {
		return err
	}
	_, err := c.responses(configPath)
	return err
}

// notifiers builds the configured notifiers. Relative secret file paths are
// resolved against the directory of configPath.
func (c AlertsConfig) notifiers(configPath string) ([]monitor.Notifier, error) {
	base := "."
	if configPath != "" {
		base = filepath.Dir(configPath)
	}
	secret := func(what, path string) (exchange.Secret, error) {
		if path == "" {
			return nil, fmt.Errorf("alerts %s: a file is required", what)
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(base, path)
		}
		b, err := readPassphraseFile(path)
		if err != nil {
			return nil, fmt.Errorf("alerts %s: %w", what, err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("alerts %s: file %s is empty", what, path)
		}
		return exchange.Secret(b), nil
	}
	var out []monitor.Notifier
	for i, w := range c.Webhook {
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
			return nil, fmt.Errorf("alerts webhook %d: url %q is not http(s)", i+1, w.URL)
		}
		k, err := secret("webhook key_file", w.KeyFile)
		if err != nil {
			return nil, err
		}
		out = append(out, &notify.Webhook{URL: w.URL, Key: k})
	}
	for _, s := range c.Slack {
		u, err := secret("slack url_file", s.URLFile)
		if err != nil {
			return nil, err
		}
		out = append(out, &notify.Slack{URL: u})
	}
	for _, p := range c.PagerDuty {
		k, err := secret("pagerduty routing_key_file", p.RoutingKeyFile)
		if err != nil {
			return nil, err
		}
		out = append(out, &notify.PagerDuty{RoutingKey: k, URL: p.URL})
	}
	for i, t := range c.Telegram {
		if t.ChatID == "" {
			return nil, fmt.Errorf("alerts telegram %d: chat_id is required", i+1)
		}
		k, err := secret("telegram token_file", t.TokenFile)
		if err != nil {
			return nil, err
		}
		out = append(out, &notify.Telegram{Token: k, ChatID: t.ChatID, BaseURL: t.BaseURL})
	}
	for i, e := range c.Email {
		if e.Addr == "" || e.From == "" || len(e.To) == 0 {
			return nil, fmt.Errorf("alerts email %d: addr, from and to are required", i+1)
		}
		n := &notify.Email{Addr: e.Addr, From: e.From, To: e.To, Username: e.Username}
		if e.Username != "" {
			p, err := secret("email password_file", e.PasswordFile)
			if err != nil {
				return nil, err
			}
			n.Password = p
		}
		out = append(out, n)
	}
	return out, nil
}

// startMonitor builds the monitor from the [alerts] section and delivers
// its alerts until ctx ends; onAlert (if set) is also told about every
// alert sent (metrics, incidents).
func (a *app) startMonitor(ctx context.Context, onAlert func(monitor.Alert)) (*monitor.Monitor, error) {
	cooldown, perMinute, err := a.cfg.Alerts.monitorOptions()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	ns, err := a.cfg.Alerts.notifiers(a.cfg.path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m := monitor.New(monitor.Options{Logger: a.log.With("component", "monitor"), Notifiers: ns,
		Cooldown: cooldown, MaxPerMinute: perMinute, OnAlert: onAlert, Thresholds: a.cfg.Alerts.Thresholds})
	a.bg.Go(func() { m.Run(ctx) })
	return m, nil
}
