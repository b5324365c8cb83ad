package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/binance"
	"github.com/keywarden/keywarden/internal/exchange/sim"
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

// TestMutualTLSBinding: a credential issued with --client-cert is refused
// over a connection without that certificate and served over one with it.
func TestMutualTLSBinding(t *testing.T) {
	c := newCLI(t)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bots CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	botKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	botTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "bot-1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	botDER, _ := x509.CreateCertificate(rand.Reader, botTmpl, caCert, &botKey.PublicKey, caKey)
	writeFile(t, c.dir+"/clientca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})), 0o600)
	writeFile(t, c.dir+"/bot.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: botDER})), 0o600)

	kit := sim.NewKit()
	kit.AddAccount(sim.Account{Key: exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "EXKEY0123456789abcdef", Secret: exchange.Secret(marker + "0123456789abcdef")},
		Permissions: map[string]bool{"read": true}})
	up := httptest.NewServer(binance.NewSimulator(kit))
	defer up.Close()
	addr := freePort(t)
	f, _ := os.OpenFile(c.config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n[gateway]\nlisten = \"" + addr + "\"\nclient_ca = \"clientca.pem\"\n\n[[venue]]\nname = \"binance\"\nupstream = \"" + up.URL + "\"\n\n[policy.reader]\nscopes = [\"read\"]\n")
	f.Close()
	c.ok("", "operator", "init")
	c.ok("api_key=EXKEY0123456789abcdef\nsecret="+marker+"0123456789abcdef\n", "key", "add", "--exchange", "binance", "--name", "main", "--stdin")
	out := c.ok("", "client", "issue", "--key", "binance/main", "--policy", "reader", "--client-cert", c.dir+"/bot.pem", "--json")
	var iss issuedCredential
	if err := json.Unmarshal([]byte(out), &iss); err != nil || iss.CertSHA256 == "" {
		t.Fatalf("issue: %v %s", err, out)
	}
	caPEM := c.ok("", "tls", "ca")

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
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(caPEM))
	withCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{botDER}, PrivateKey: botKey}}}}}
	without := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	base := "https://" + addr
	for i := 0; i < 300; i++ {
		if resp, err := without.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cred := &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: iss.ID, Secret: exchange.Secret(iss.SecretText)}
	call := func(hc *http.Client) int {
		code, _ := botCallWith(t, hc, base, cred)
		return code
	}
	if got := call(without); got != 401 {
		t.Errorf("without the client certificate: %d, want 401", got)
	}
	if got := call(withCert); got != 200 {
		t.Errorf("with the client certificate: %d, want 200", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
