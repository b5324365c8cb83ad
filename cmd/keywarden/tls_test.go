package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestServeTLSWithLocalCA: by default the gateway serves HTTPS with a
// certificate from the local CA, and a client trusting `keywarden tls ca`
// connects while one that does not is refused.
func TestServeTLSWithLocalCA(t *testing.T) {
	c := newCLI(t)
	addr := freePort(t)
	f, _ := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n[gateway]\nlisten = \"" + addr + "\"\n\n[[venue]]\nname = \"binance\"\nupstream = \"http://127.0.0.1:9\"\n")
	f.Close()
	c.ok("", "operator", "init")
	caPEM := c.ok("", "tls", "ca")
	if !strings.HasPrefix(caPEM, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("tls ca printed %q", caPEM)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		getenv := func(k string) string {
			if k == "KEYWARDEN_CONFIG" {
				return c.config
			}
			return ""
		}
		done <- runIO(ctx, []string{"keywarden", "serve"}, getenv, strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	trusting := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var err error
	for i := 0; i < 300; i++ {
		var resp *http.Response
		if resp, err = trusting.Get("https://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case e := <-done:
			t.Fatalf("serve exited: %v", e)
		default:
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("client trusting the local CA: %v", err)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + addr + "/healthz"); err == nil {
		t.Error("a client without the local CA was served")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestPlaintextOnlyOnLoopback(t *testing.T) {
	c := newCLI(t)
	f, _ := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n[gateway]\nlisten = \"0.0.0.0:0\"\nplaintext = true\n")
	f.Close()
	c.ok("", "operator", "init")
	c.fails("plain HTTP is allowed only on a loopback address", "", "serve")
}

func TestSimulatePrintsVenues(t *testing.T) {
	c := newCLI(t)
	out := c.ok("", "simulate", "--duration", "10ms")
	for _, v := range []string{"binance-usdm", "kraken-futures", "okx", "deribit", "bitmex", "[[venue]]"} {
		if !strings.Contains(out, v) {
			t.Errorf("simulate output lacks %q:\n%s", v, out)
		}
	}
	c.fails("loopback", "", "simulate", "--host", "0.0.0.0")
}
