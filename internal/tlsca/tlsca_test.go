package tlsca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/store"
	"github.com/keywarden/keywarden/internal/store/memory"
)

type secrets struct{ m map[string][]byte }

func (s *secrets) PutSecret(_ context.Context, kind, id string, b []byte) error {
	s.m[kind+id] = append([]byte(nil), b...)
	return nil
}

func (s *secrets) Secret(_ context.Context, kind, id string) ([]byte, error) {
	b, ok := s.m[kind+id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return append([]byte(nil), b...), nil
}

func TestCAServesTLSThatClientsTrust(t *testing.T) {
	ctx := context.Background()
	st, sec := memory.New(), &secrets{m: map[string][]byte{}}
	now := time.Now()
	ca, err := LoadOrCreate(ctx, st, sec, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(ctx, st, sec, now)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Fatal("second LoadOrCreate made a new CA")
	}
	cert, err := again.ServerCertificate([]string{"127.0.0.1", "localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CA PEM does not parse")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("client trusting the CA: %v", err)
	}
	resp.Body.Close()
	// A client without the CA refuses.
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get(srv.URL); err == nil {
		t.Fatal("client without the CA accepted the certificate")
	}
}
