package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/monitor"
)

var alert = monitor.Alert{Rule: monitor.RuleVenueAuth, Severity: monitor.SeverityCritical, Subject: "binance/main",
	Summary: "venue refused exchange key binance/main", Evidence: map[string]string{"status": "401", "venue": "binance"},
	Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

var fast = Retry{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

// recv is a local HTTP receiver that fails the first fails requests with
// status failWith.
type recv struct {
	mu       sync.Mutex
	fails    int
	failWith int
	reqs     []captured
}

type captured struct {
	path   string
	header http.Header
	body   []byte
}

func (r *recv) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, captured{req.URL.Path, req.Header.Clone(), b})
	if len(r.reqs) <= r.fails {
		w.WriteHeader(r.failWith)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (r *recv) last(t *testing.T) captured {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("receiver got no request")
	}
	return r.reqs[len(r.reqs)-1]
}

func TestWebhookSignsBody(t *testing.T) {
	rv := &recv{}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	key := []byte("whsec-0123456789")
	now := func() time.Time { return time.Unix(1700000000, 0) }
	w := &Webhook{URL: srv.URL + "/hook", Key: exchange.Secret(key), Retry: fast, Now: now}
	if err := w.Notify(context.Background(), alert); err != nil {
		t.Fatalf("Notify = %v, want nil", err)
	}
	got := rv.last(t)
	var a monitor.Alert
	if err := json.Unmarshal(got.body, &a); err != nil {
		t.Fatalf("body %s: %v", got.body, err)
	}
	if diff := cmp.Diff(alert, a); diff != "" {
		t.Errorf("posted alert (-want +got):\n%s", diff)
	}
	ts, sig := got.header.Get(HeaderTimestamp), got.header.Get(HeaderSignature)
	if ts != "1700000000" {
		t.Errorf("timestamp header = %q, want 1700000000", ts)
	}
	if !Verify(key, ts, got.body, sig) {
		t.Errorf("Verify(signature %q) = false, want true", sig)
	}
	tampered := append([]byte{}, got.body...)
	tampered[len(tampered)-2] ^= 1
	if Verify(key, ts, tampered, sig) || Verify(key, "1700000001", got.body, sig) || Verify([]byte("other"), ts, got.body, sig) {
		t.Error("Verify accepted a tampered body, timestamp or key")
	}
	if strings.Contains(string(got.body), string(key)) {
		t.Error("body contains the signing key")
	}
}

func TestWebhookRequiresKey(t *testing.T) {
	w := &Webhook{URL: "http://127.0.0.1:1/", Retry: fast}
	if err := w.Notify(context.Background(), alert); err == nil {
		t.Error("Notify without a signing key = nil, want an error")
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		fails     int
		failWith  int
		wantErr   bool
		wantTries int
	}{
		{"ok at once", 0, 0, false, 1},
		{"503 then ok", 2, 503, false, 3},
		{"429 then ok", 1, 429, false, 2},
		{"always 500 gives up", 10, 500, true, 3},
		{"400 is permanent", 10, 400, true, 1},
		{"401 is permanent", 10, 401, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := &recv{fails: tt.fails, failWith: tt.failWith}
			srv := httptest.NewServer(rv)
			defer srv.Close()
			s := &Slack{URL: exchange.Secret(srv.URL + "/services/T000/B000/SECRETPART"), Retry: fast}
			err := s.Notify(context.Background(), alert)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Notify = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "SECRETPART") {
				t.Errorf("error %q quotes the secret webhook URL", err)
			}
			if len(rv.reqs) != tt.wantTries {
				t.Errorf("tries = %d, want %d", len(rv.reqs), tt.wantTries)
			}
		})
	}
}

func TestNetworkErrorHidesURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	tg := &Telegram{Token: exchange.Secret("123:BOTTOKEN"), ChatID: "42", BaseURL: "http://" + addr, Retry: fast}
	err = tg.Notify(context.Background(), alert)
	if err == nil {
		t.Fatal("Notify to a closed port = nil, want an error")
	}
	if strings.Contains(err.Error(), "BOTTOKEN") {
		t.Errorf("error %q quotes the bot token", err)
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	rv := &recv{fails: 100, failWith: 503}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Slack{URL: exchange.Secret(srv.URL), Retry: Retry{Attempts: 100, Backoff: time.Hour}}
	done := make(chan error, 1)
	go func() { done <- s.Notify(ctx, alert) }()
	for i := 0; i < 1000; i++ {
		rv.mu.Lock()
		n := len(rv.reqs)
		rv.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("Notify after cancel = nil, want an error")
	}
	if len(rv.reqs) != 1 {
		t.Errorf("tries = %d, want 1 (the backoff wait was cancelled)", len(rv.reqs))
	}
}

func TestSlackBody(t *testing.T) {
	rv := &recv{}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	s := &Slack{URL: exchange.Secret(srv.URL + "/services/x\n"), Retry: fast}
	if err := s.Notify(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(rv.last(t).body, &got); err != nil {
		t.Fatal(err)
	}
	want := "[keywarden CRITICAL] venue_key_rejected: venue refused exchange key binance/main\n" +
		"subject: binance/main\ntime: 2026-01-02T03:04:05Z\nstatus: 401\nvenue: binance"
	if got["text"] != want {
		t.Errorf("slack text = %q, want %q", got["text"], want)
	}
}

func TestPagerDutyBody(t *testing.T) {
	rv := &recv{}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	p := &PagerDuty{RoutingKey: exchange.Secret("R0UTINGKEY\n"), URL: srv.URL + "/v2/enqueue", Retry: fast}
	if err := p.Notify(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	c := rv.last(t)
	var got pdEvent
	if err := json.Unmarshal(c.body, &got); err != nil {
		t.Fatal(err)
	}
	want := pdEvent{RoutingKey: "R0UTINGKEY", EventAction: "trigger", DedupKey: "keywarden/venue_key_rejected/binance/main",
		Payload: pdPayload{Summary: alert.Summary, Source: "keywarden", Severity: "critical", Timestamp: "2026-01-02T03:04:05Z",
			Component: "binance/main", Class: "venue_key_rejected", CustomDetails: alert.Evidence}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pagerduty event (-want +got):\n%s", diff)
	}
	if c.path != "/v2/enqueue" || c.header.Get("Content-Type") != "application/json" {
		t.Errorf("request path %q content type %q", c.path, c.header.Get("Content-Type"))
	}
}

func TestTelegramBody(t *testing.T) {
	rv := &recv{}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	tg := &Telegram{Token: exchange.Secret("123:ABC"), ChatID: "-10042", BaseURL: srv.URL, Retry: fast}
	if err := tg.Notify(context.Background(), alert); err != nil {
		t.Fatal(err)
	}
	c := rv.last(t)
	if c.path != "/bot123:ABC/sendMessage" {
		t.Errorf("path = %q, want /bot123:ABC/sendMessage", c.path)
	}
	var got struct {
		ChatID string `json:"chat_id"`
		Text   string `json:"text"`
	}
	if err := json.Unmarshal(c.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ChatID != "-10042" || !strings.HasPrefix(got.Text, "[keywarden CRITICAL] venue_key_rejected") {
		t.Errorf("telegram message = %+v", got)
	}
}

// smtpServer is a minimal SMTP server for tests: it accepts one message per
// session, or answers failCode to the first failFirst MAIL commands.
type smtpServer struct {
	ln        net.Listener
	mu        sync.Mutex
	msgs      []smtpMsg
	failFirst int
	failCode  string
	sessions  int
}

type smtpMsg struct {
	from string
	to   []string
	data string
}

func newSMTP(t *testing.T, failFirst int, failCode string) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, failFirst: failFirst, failCode: failCode}
	go s.serve()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *smtpServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

func (s *smtpServer) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	s.mu.Lock()
	s.sessions++
	fail := s.sessions <= s.failFirst
	s.mu.Unlock()
	r := bufio.NewReader(c)
	say := func(l string) { _, _ = io.WriteString(c, l+"\r\n") }
	say("220 test ESMTP")
	var m smtpMsg
	for range 100 {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 test")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			if fail {
				say(s.failCode + " try later")
				continue
			}
			m.from = line[len("MAIL FROM:"):]
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			m.to = append(m.to, line[len("RCPT TO:"):])
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var data strings.Builder
			for range 10000 {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			m.data = data.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func TestEmail(t *testing.T) {
	s := newSMTP(t, 0, "")
	e := &Email{Addr: s.ln.Addr().String(), From: "keywarden@example.org", To: []string{"ops@example.org", "sec@example.org"},
		Retry: fast, Now: func() time.Time { return alert.Time }}
	if err := e.Notify(context.Background(), alert); err != nil {
		t.Fatalf("Notify = %v, want nil", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) != 1 {
		t.Fatalf("messages = %d, want 1", len(s.msgs))
	}
	m := s.msgs[0]
	if diff := cmp.Diff([]string{"<ops@example.org>", "<sec@example.org>"}, m.to); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Subject: [keywarden CRITICAL] venue_key_rejected binance/main\r\n",
		"From: keywarden@example.org\r\n", "\r\nsubject: binance/main\r\n", "status: 401\r\n"} {
		if !strings.Contains(m.data, want) {
			t.Errorf("message lacks %q:\n%s", want, m.data)
		}
	}
}

func TestEmailRetries(t *testing.T) {
	tests := []struct {
		name         string
		failFirst    int
		code         string
		wantErr      bool
		wantSessions int
	}{
		{"transient 451 then ok", 2, "451", false, 3},
		{"permanent 550", 5, "550", true, 1},
		{"always 451 gives up", 5, "451", true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSMTP(t, tt.failFirst, tt.code)
			e := &Email{Addr: s.ln.Addr().String(), From: "kw@example.org", To: []string{"ops@example.org"}, Retry: fast}
			err := e.Notify(context.Background(), alert)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Notify = %v, want error %v", err, tt.wantErr)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.sessions != tt.wantSessions {
				t.Errorf("sessions = %d, want %d", s.sessions, tt.wantSessions)
			}
		})
	}
}

func TestEmailRefusesHeaderInjection(t *testing.T) {
	e := &Email{Addr: "127.0.0.1:25", From: "a@example.org\r\nBcc: evil@example.org", To: []string{"ops@example.org"}, Retry: fast}
	if err := e.Notify(context.Background(), alert); err == nil {
		t.Error("Notify with a line break in From = nil, want an error")
	}
}
