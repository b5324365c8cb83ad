package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Syslog severities used for audit records (RFC 5424 §6.2.1).
const (
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
)

// FacilityLogAudit is syslog facility 13, "log audit".
const FacilityLogAudit = 13

// sdID is the structured-data ID of keywarden's element; 32473 is the
// private enterprise number reserved for documentation (RFC 5612).
const sdID = "keywarden@32473"

// maxUDPMessage bounds one datagram; longer messages are cut and marked.
const maxUDPMessage = 65000

// SyslogOptions configures a Syslog sink.
type SyslogOptions struct {
	Network  string // "tcp" or "udp"
	Addr     string // host:port
	Hostname string // default os.Hostname()
	AppName  string // default "keywarden"
	Facility int    // default FacilityLogAudit
	Timeout  time.Duration
}

// Syslog is a Sink that sends each record as an RFC 5424 message whose MSG
// is the stored JSON line. Over TCP it uses octet-counting framing (RFC 6587
// §3.4.1), so a message is never split by a newline in it; over UDP each
// message is one datagram (RFC 5426) and delivery is not confirmed. A
// Syslog is safe for concurrent use.
type Syslog struct {
	o    SyslogOptions
	mu   sync.Mutex
	conn net.Conn
	// Truncated counts UDP messages cut to fit a datagram.
	truncated int
}

var _ Sink = (*Syslog)(nil)

// NewSyslog returns a Syslog sink; it connects on first use.
func NewSyslog(o SyslogOptions) (*Syslog, error) {
	if o.Network != "tcp" && o.Network != "udp" {
		return nil, fmt.Errorf("audit: syslog: network %q, want tcp or udp", o.Network)
	}
	if o.Addr == "" {
		return nil, errors.New("audit: syslog: no address")
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.AppName == "" {
		o.AppName = "keywarden"
	}
	if o.Facility == 0 {
		o.Facility = FacilityLogAudit
	}
	if o.Facility < 0 || o.Facility > 23 {
		return nil, fmt.Errorf("audit: syslog: facility %d out of range", o.Facility)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &Syslog{o: o}, nil
}

// headerField returns s as an RFC 5424 header field: printable US-ASCII
// without spaces, at most n bytes, "-" when empty.
func headerField(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

func severity(t Type) int {
	switch t {
	case TypeDenied:
		return sevWarning
	case TypeEvent:
		return sevNotice
	}
	return sevInfo
}

// FormatRFC5424 appends one RFC 5424 message for e to dst:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [keywarden@32473 seq="N"] MSG
//
// PRI is facility*8 + severity (warning for denied, notice for events,
// informational otherwise), MSGID is the record type and MSG the stored
// line.
func FormatRFC5424(dst []byte, facility int, hostname, app string, procID int, e Entry) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(facility*8+severity(e.Type)), 10)
	dst = append(dst, ">1 "...)
	dst = e.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	dst = append(dst, ' ')
	dst = append(dst, headerField(hostname, 255)...)
	dst = append(dst, ' ')
	dst = append(dst, headerField(app, 48)...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(procID), 10)
	dst = append(dst, ' ')
	dst = append(dst, headerField(string(e.Type), 32)...)
	dst = append(dst, ` [`+sdID+` seq="`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `"] `...)
	dst = append(dst, e.Line...)
	return dst
}

// Send writes every entry; on any error the connection is dropped and the
// next Send redials.
func (s *Syslog) Send(ctx context.Context, batch []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		d := net.Dialer{Timeout: s.o.Timeout}
		c, err := d.DialContext(ctx, s.o.Network, s.o.Addr)
		if err != nil {
			return fmt.Errorf("audit: syslog: %w", err)
		}
		s.conn = c
	}
	deadline := time.Now().Add(s.o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	var buf bytes.Buffer
	pid := os.Getpid()
	for _, e := range batch {
		msg := FormatRFC5424(nil, s.o.Facility, s.o.Hostname, s.o.AppName, pid, e)
		if s.o.Network == "udp" {
			if len(msg) > maxUDPMessage {
				msg = append(msg[:maxUDPMessage-len("...[truncated]")], "...[truncated]"...)
				s.truncated++
			}
			if _, err := s.conn.Write(msg); err != nil {
				s.closeLocked()
				return fmt.Errorf("audit: syslog: %w", err)
			}
			continue
		}
		buf.WriteString(strconv.Itoa(len(msg)))
		buf.WriteByte(' ')
		buf.Write(msg)
	}
	if s.o.Network == "tcp" {
		if _, err := s.conn.Write(buf.Bytes()); err != nil {
			s.closeLocked()
			return fmt.Errorf("audit: syslog: %w", err)
		}
	}
	return nil
}

// Truncated returns how many UDP messages were cut to fit a datagram.
func (s *Syslog) Truncated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.truncated
}

func (s *Syslog) closeLocked() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// Close closes the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}
