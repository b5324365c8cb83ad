package notify

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/monitor"
)

var _ monitor.Notifier = (*Email)(nil)

// Email sends alerts by SMTP. With Username set it authenticates with PLAIN,
// which net/smtp allows only over TLS or to localhost.
type Email struct {
	Addr     string // host:port
	From     string
	To       []string
	Username string
	Password exchange.Secret
	Retry    Retry
	Now      func() time.Time
}

func (e *Email) Notify(ctx context.Context, a monitor.Alert) error {
	if e.From == "" || len(e.To) == 0 {
		return errors.New("email: from and to are required")
	}
	for _, s := range append([]string{e.From}, e.To...) {
		if strings.ContainsAny(s, "\r\n") {
			return errors.New("email: address contains a line break")
		}
	}
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return fmt.Errorf("email: addr: %w", err)
	}
	var auth smtp.Auth
	if e.Username != "" {
		auth = smtp.PlainAuth("", e.Username, string(e.Password), host)
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	subject := fmt.Sprintf("[keywarden %s] %s %s", strings.ToUpper(string(a.Severity)), a.Rule, a.Subject)
	var msg strings.Builder
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", e.From, strings.Join(e.To, ", "),
		mime.QEncoding.Encode("utf-8", subject), now().UTC().Format(time.RFC1123Z))
	msg.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	msg.WriteString(strings.ReplaceAll(text(a), "\n", "\r\n"))
	msg.WriteString("\r\n")
	body := []byte(msg.String())
	err = e.Retry.do(ctx, func() (bool, error) {
		// SMTP permanent failures are 5xx replies; anything else
		// (connection refused, 4xx) may pass on a retry.
		err := smtp.SendMail(e.Addr, auth, e.From, e.To, body)
		return err != nil && !permanent(err), err
	})
	if err != nil {
		return errors.New("email: " + err.Error())
	}
	return nil
}

func permanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}
