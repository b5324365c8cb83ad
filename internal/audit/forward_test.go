package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFormatRFC5424(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		host string
		want string
	}{
		{"intent", Entry{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC), Type: TypeIntent, Line: []byte(`{"seq":7}`)},
			"gw1", `<110>1 2026-01-02T03:04:05.600000Z gw1 keywarden 42 intent [keywarden@32473 seq="7"] {"seq":7}`},
		{"denied is a warning", Entry{Seq: 8, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Type: TypeDenied, Line: []byte(`{}`)},
			"gw 1\n", `<108>1 2026-01-02T03:04:05.000000Z gw1 keywarden 42 denied [keywarden@32473 seq="8"] {}`},
		{"event is a notice", Entry{Seq: 9, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Type: TypeEvent, Line: []byte(`{}`)},
			"", `<109>1 2026-01-02T03:04:05.000000Z - keywarden 42 event [keywarden@32473 seq="9"] {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(FormatRFC5424(nil, FacilityLogAudit, tt.host, "keywarden", 42, tt.e))
			if got != tt.want {
				t.Errorf("FormatRFC5424 = %q, want %q", got, tt.want)
			}
		})
	}
}

// readOctetCounted reads RFC 6587 octet-counted frames from r.
func readOctetCounted(r *bufio.Reader) (string, error) {
	n, err := r.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
	if err != nil || size <= 0 || size > 1<<20 {
		return "", fmt.Errorf("bad frame length %q", n)
	}
	b := make([]byte, size)
	_, err = io.ReadFull(r, b)
	return string(b), err
}

func TestForwardSyslogTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					m, err := readOctetCounted(br)
					if err != nil {
						return
					}
					mu.Lock()
					got = append(got, m)
					mu.Unlock()
				}
			}()
		}
	}()
	l := openTest(t, Options{CheckpointEvery: 1 << 20})
	for i := range 20 {
		r := intentRecord(i)
		r.Intent.Body = "line\nbreak=1" // newlines are escaped in the line
		mustAppend(t, l, r)
	}
	sink, err := NewSyslog(SyslogOptions{Network: "tcp", Addr: ln.Addr().String(), Hostname: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	fw, err := NewForwarder(ForwarderOptions{Log: l, Sink: sink, Name: "syslog", MaxBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	waitFor(t, "20 syslog messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 20 })
	waitFor(t, "cursor at 20", func() bool { return fw.Status().Sent == 20 })
	cancel()
	<-done
	recs := readAll(t, l.Dir())
	mu.Lock()
	defer mu.Unlock()
	for i, m := range got[:20] {
		prefix := `<110>1 `
		if !strings.HasPrefix(m, prefix) || !strings.Contains(m, fmt.Sprintf(`seq="%d"`, i+1)) {
			t.Errorf("message %d = %q", i, m)
		}
		_, line, _ := strings.Cut(m, `"] `)
		r, err := parseLine([]byte(line))
		if err != nil || r.Hash != recs[i].Hash {
			t.Errorf("message %d carries %q (%v), want record %d", i, line, err, i+1)
		}
	}
	if s := fw.Status(); s.Sent != 20 || s.Lag != 0 || fw.Err() != nil {
		t.Errorf("Status = %+v, Err = %v; want all 20 sent", s, fw.Err())
	}
}

func TestForwardSyslogUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l := openTest(t, Options{CheckpointEvery: 1 << 20})
	mustAppend(t, l, intentRecord(1))
	mustAppend(t, l, Record{Event: &Event{Kind: "unseal"}})
	sink, err := NewSyslog(SyslogOptions{Network: "udp", Addr: pc.LocalAddr().String(), Hostname: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var batch []Entry
	for rr := range scan(l.Dir()) {
		batch = append(batch, Entry{Seq: rr.Seq, Time: rr.Time, Type: rr.Type, Line: append([]byte(nil), rr.Line...)})
	}
	if err := sink.Send(context.Background(), batch); err != nil {
		t.Fatalf("Send = %v", err)
	}
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 70000)
	for i, want := range []string{"<110>1 ", "<109>1 "} {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		m := string(buf[:n])
		if !strings.HasPrefix(m, want) || !strings.HasSuffix(m, string(batch[i].Line)) {
			t.Errorf("datagram %d = %q, want prefix %q and the record line", i, m, want)
		}
	}
}

// flakyReceiver is an HTTP log receiver that can be told to fail.
type flakyReceiver struct {
	mu    sync.Mutex
	fail  bool
	lines []string
	posts int
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	if f.fail || r.Header.Get("Content-Type") != "application/x-ndjson" || r.Header.Get("Authorization") != "Bearer t0k" {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	f.lines = append(f.lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
}

func TestForwardHTTPRetainsDuringOutage(t *testing.T) {
	recv := &flakyReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	l := openTest(t, Options{CheckpointEvery: 1 << 20})
	sink, err := NewHTTPSink(HTTPSinkOptions{URL: srv.URL + "/ingest", Header: http.Header{"Authorization": {"Bearer t0k"}}})
	if err != nil {
		t.Fatal(err)
	}
	fw, err := NewForwarder(ForwarderOptions{Log: l, Sink: sink, Name: "http", MaxBatch: 10, Retry: 5 * time.Millisecond, MaxLag: 15})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	for i := range 5 {
		mustAppend(t, l, intentRecord(i))
	}
	waitFor(t, "first 5 records", func() bool { return fw.Status().Sent == 5 })

	// Outage: appends keep succeeding, the forwarder reports lag and an
	// error, and nothing is dropped.
	recv.mu.Lock()
	recv.fail = true
	recv.mu.Unlock()
	for i := range 30 {
		mustAppend(t, l, intentRecord(10+i))
	}
	waitFor(t, "forwarder error", func() bool { return fw.Status().LastError != nil })
	if fw.Err() == nil {
		t.Errorf("Err() during outage = nil, want an error")
	}
	if s := fw.Status(); s.Lag != 30 || s.LastError == nil {
		t.Errorf("Status during outage = %+v, want lag 30 and an error", s)
	}
	recv.mu.Lock()
	recv.fail = false
	recv.mu.Unlock()
	// Sent is updated only after the cursor is persisted.
	waitFor(t, "catch-up", func() bool { return fw.Status().Sent == 35 })
	waitFor(t, "healthy", func() bool { return fw.Err() == nil })
	cancel()
	<-done

	recv.mu.Lock()
	for i, line := range recv.lines {
		r, err := parseLine([]byte(line))
		if err != nil || r.Seq != uint64(i+1) {
			t.Errorf("received line %d = seq %d (%v), want seq %d", i, r.Seq, err, i+1)
		}
	}
	if len(recv.lines) != 35 {
		t.Errorf("received %d lines, want 35 (exactly once while the forwarder ran)", len(recv.lines))
	}
	recv.mu.Unlock()

	// A new forwarder resumes from the persisted cursor.
	b, err := os.ReadFile(filepath.Join(l.Dir(), "cursor-http"))
	if err != nil || strings.TrimSpace(string(b)) != "35" {
		t.Errorf("cursor file = %q, %v, want 35", b, err)
	}
	mustAppend(t, l, intentRecord(99))
	fw2, _ := NewForwarder(ForwarderOptions{Log: l, Sink: sink, Name: "http"})
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- fw2.Run(ctx2) }()
	waitFor(t, "resume", func() bool { return fw2.Status().Sent == 36 })
	cancel2()
	<-done
	recv.mu.Lock()
	if r, _ := parseLine([]byte(recv.lines[35])); r.Seq != 36 {
		t.Errorf("resumed with seq %d, want 36", r.Seq)
	}
	recv.mu.Unlock()
}

func TestForwardAcrossSegments(t *testing.T) {
	recv := &flakyReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	l := openTest(t, Options{CheckpointEvery: 1 << 20, SegmentSize: 2500})
	for i := range 25 {
		mustAppend(t, l, intentRecord(i))
	}
	sink, _ := NewHTTPSink(HTTPSinkOptions{URL: srv.URL, Header: http.Header{"Authorization": {"Bearer t0k"}}})
	fw, _ := NewForwarder(ForwarderOptions{Log: l, Sink: sink, Name: "seg", MaxBatch: 4})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	waitFor(t, "25 records", func() bool { return fw.Status().Sent == 25 })
	cancel()
	<-done
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for i, line := range recv.lines {
		if r, err := parseLine([]byte(line)); err != nil || r.Seq != uint64(i+1) {
			t.Errorf("line %d = seq %d (%v)", i, r.Seq, err)
		}
	}
}

func TestHTTPSinkRefusesRedirect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.2:1/", http.StatusFound)
	}))
	defer srv.Close()
	sink, _ := NewHTTPSink(HTTPSinkOptions{URL: srv.URL})
	err := sink.Send(context.Background(), []Entry{{Seq: 1, Line: []byte("{}")}})
	if err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("Send to a redirecting receiver = %v, want a 302 error", err)
	}
}
