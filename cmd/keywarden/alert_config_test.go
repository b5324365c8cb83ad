package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/notify"
)

func TestAlertsConfigNotifiers(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keywarden.toml")
	writeFile(t, filepath.Join(dir, "key"), "whsec\n", 0o600)
	writeFile(t, filepath.Join(dir, "open"), "whsec\n", 0o644)
	writeFile(t, filepath.Join(dir, "empty"), "", 0o600)
	tests := []struct {
		name    string
		cfg     AlertsConfig
		want    string // notifier types, or the error
		wantErr bool
	}{
		{"none", AlertsConfig{}, "", false},
		{"all kinds", AlertsConfig{
			Webhook:   []WebhookAlert{{URL: "https://hooks.example.org/kw", KeyFile: "key"}},
			Slack:     []SlackAlert{{URLFile: "key"}},
			PagerDuty: []PagerDutyAlert{{RoutingKeyFile: filepath.Join(dir, "key")}},
			Telegram:  []TelegramAlert{{TokenFile: "key", ChatID: "42"}},
			Email:     []EmailAlert{{Addr: "smtp.example.org:587", From: "kw@example.org", To: []string{"ops@example.org"}}},
		}, "*notify.Webhook *notify.Slack *notify.PagerDuty *notify.Telegram *notify.Email", false},
		{"webhook without key", AlertsConfig{Webhook: []WebhookAlert{{URL: "https://x"}}}, "a file is required", true},
		{"webhook not http", AlertsConfig{Webhook: []WebhookAlert{{URL: "ftp://x", KeyFile: "key"}}}, "not http(s)", true},
		{"secret file readable by others", AlertsConfig{Slack: []SlackAlert{{URLFile: "open"}}}, "0600", true},
		{"empty secret file", AlertsConfig{Slack: []SlackAlert{{URLFile: "empty"}}}, "is empty", true},
		{"missing secret file", AlertsConfig{Slack: []SlackAlert{{URLFile: "nope"}}}, "does not exist", true},
		{"telegram without chat", AlertsConfig{Telegram: []TelegramAlert{{TokenFile: "key"}}}, "chat_id is required", true},
		{"email without to", AlertsConfig{Email: []EmailAlert{{Addr: "h:25", From: "a@b"}}}, "required", true},
		{"email password file", AlertsConfig{Email: []EmailAlert{{Addr: "h:25", From: "a@b", To: []string{"c@d"}, Username: "u"}}}, "a file is required", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, err := tt.cfg.notifiers(cfgPath)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("notifiers() = %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("notifiers() = %v, want nil", err)
			}
			var types []string
			for _, n := range ns {
				types = append(types, fmt.Sprintf("%T", n))
			}
			if got := strings.Join(types, " "); got != tt.want {
				t.Errorf("notifiers() = %s, want %s", got, tt.want)
			}
			for _, n := range ns {
				if s := fmt.Sprintf("%+v %#v", n, n); strings.Contains(s, "whsec") {
					t.Errorf("notifier prints its secret: %s", s)
				}
			}
			if len(ns) > 0 && string(ns[0].(*notify.Webhook).Key) != "whsec" {
				t.Errorf("webhook key = %q, want the file's content without the newline", ns[0].(*notify.Webhook).Key)
			}
		})
	}
}

func TestAlertsConfigFromFile(t *testing.T) {
	c := newCLI(t)
	f, err := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n[alerts]\ncooldown = \"5m\"\n")
	f.Close()
	c.fails("no notifiers configured", "", "alert", "test")
	c2 := newCLI(t)
	f, _ = os.OpenFile(c2.config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n[alerts]\nslack_url = \"https://hooks.slack.com/services/inline\"\n")
	f.Close()
	c2.fails("unknown key", "", "alert", "test")
}

func TestAlertsMonitorOptions(t *testing.T) {
	tests := []struct {
		cooldown string
		want     string
		wantErr  bool
	}{
		{"", "0s", false},
		{"5m", "5m0s", false},
		{"soon", "", true},
		{"-1m", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.cooldown, func(t *testing.T) {
			got, _, err := AlertsConfig{Cooldown: tt.cooldown}.monitorOptions()
			if (err != nil) != tt.wantErr {
				t.Fatalf("monitorOptions(%q) = %v, want error %v", tt.cooldown, err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("monitorOptions(%q) = %v, want %s", tt.cooldown, got, tt.want)
			}
		})
	}
}
