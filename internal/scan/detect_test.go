package scan

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

const (
	alnumChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	urlChars   = alnumChars + "-_"
)

// randString draws n characters from alphabet with crypto/rand, until the
// result mixes upper case, lower case and digits (the detectors require
// that of letter-and-digit keys; a real key lacking one class is a known
// miss, documented in docs/scanner.md).
func randString(t testing.TB, alphabet string, n int) string {
	t.Helper()
	for range 100 {
		b := make([]byte, n)
		for i := range b {
			v, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				t.Fatal(err)
			}
			b[i] = alphabet[v.Int64()]
		}
		s := string(b)
		if strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(s, "0123456789") {
			return s
		}
	}
	t.Fatal("no mixed random string")
	return ""
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randHex(t testing.TB, n int) string {
	t.Helper()
	for {
		s := hex.EncodeToString(randBytes(t, (n+1)/2))[:n]
		if strings.ContainsAny(s, "abcdef") && strings.ContainsAny(s, "0123456789") {
			return s
		}
	}
}

func randUUID(t testing.TB) string {
	h := randHex(t, 32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randB64(t testing.TB, n int) string {
	return base64.StdEncoding.EncodeToString(randBytes(t, n))
}

func ed25519CDP(t testing.TB) (string, ed25519.PrivateKey) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(priv), priv
}

func pemKey(t testing.TB, alg string) string {
	t.Helper()
	var blk *pem.Block
	switch alg {
	case "ec":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	}
	return string(pem.EncodeToMemory(blk))
}

type detectCase struct {
	name  string
	text  string // the file
	value string // what must be found (its redacted form is checked)
	rule  string
}

func detectCases(t testing.TB) []detectCase {
	bnKey, bnSecret := randString(t, alnumChars, 64), randString(t, alnumChars, 64)
	okxKey, okxSecret := randUUID(t), strings.ToUpper(randHex(t, 32))
	kcKey, kcSecret := randHex(t, 24), randUUID(t)
	bgKey, bgSecret := "bg_"+randHex(t, 32), randHex(t, 64)
	cdpSecret, _ := ed25519CDP(t)
	cdpName := "organizations/" + randUUID(t) + "/apiKeys/" + randUUID(t)
	ecPEM := pemKey(t, "ec")
	escaped := strings.ReplaceAll(ecPEM, "\n", `\n`)
	hlKey := "0x" + randHex(t, 64)
	seed := base64.StdEncoding.EncodeToString(randBytes(t, 32))
	krSecret := randB64(t, 64)
	kfSecret := base64.RawStdEncoding.EncodeToString(randBytes(t, 66))
	deriSecret := randString(t, urlChars, 43)
	mexKey, mexSecret := randString(t, urlChars, 24), randString(t, urlChars, 48)
	byKey, bySecret := randString(t, alnumChars, 18), randString(t, alnumChars, 36)
	gateKey, gateSecret := randHex(t, 32), randHex(t, 64)
	pass := "Tr4d" + randString(t, alnumChars, 8)
	kwID := "kw" + randString(t, alnumChars, 48)
	generic := randString(t, alnumChars, 40)
	return []detectCase{
		{"binance env key", "BINANCE_API_KEY=" + bnKey + "\n", bnKey, "binance-api-key"},
		{"binance env secret", "BINANCE_API_SECRET=" + bnSecret + "\n", bnSecret, "binance-api-secret"},
		{"binance yaml secret", "exchanges:\n  binance:\n    apiKey: " + bnKey + "\n    secret: '" + bnSecret + "'\n", bnSecret, "binance-api-secret"},
		{"binance ccxt positional", "ex = ccxt.binance()\nclient = Client(\"" + bnSecret + "\")\n", bnSecret, "binance-credential"},
		{"binance usdm", "binanceusdm = {\n  \"secret\": \"" + bnSecret + "\",\n}\n", bnSecret, "binance-usdm-api-secret"},
		{"coinbase cdp ed25519", "{\"id\": \"x\", \"privateKey\": \"" + cdpSecret + "\"}\n", cdpSecret, "coinbase-cdp-ed25519-key"},
		{"coinbase cdp key name", "{\"name\": \"" + cdpName + "\"}\n", cdpName, "coinbase-cdp-key-name"},
		{"coinbase cdp pem", "{\"name\": \"" + cdpName + "\",\n\"privateKey\": \"" + escaped + "\"}\n", "", "coinbase-cdp-private-key-ec"},
		{"coinbase ed25519 seed", "COINBASE_API_SECRET=" + seed + "\n", seed, "coinbase-cdp-ed25519-seed"},
		{"kraken", "kraken:\n  key: abc\n  secret: " + krSecret + "\n", krSecret, "kraken-api-secret"},
		{"kraken futures", "[kraken-futures]\napi_secret = \"" + kfSecret + "\"\n", kfSecret, "kraken-futures-api-secret"},
		{"okx key", "okx:\n  apiKey: " + okxKey + "\n", okxKey, "okx-api-key"},
		{"okx secret", "OKX_SECRET_KEY=\"" + okxSecret + "\"\n", okxSecret, "okx-api-secret"},
		{"okx passphrase near key", "okx:\n  apiKey: " + okxKey + "\n  secret: " + okxSecret + "\n  passphrase: \"" + pass + "\"\n", pass, "okx-api-passphrase"},
		{"bybit key", "bybit_api_key = '" + byKey + "'\n", byKey, "bybit-api-key"},
		{"bybit secret", "bybit_api_secret = '" + bySecret + "'\n", bySecret, "bybit-api-secret"},
		{"kucoin key", "KUCOIN_KEY=" + kcKey + "\n", kcKey, "kucoin-api-key"},
		{"kucoin secret", "KUCOIN_SECRET=" + kcSecret + "\n", kcSecret, "kucoin-api-secret"},
		{"kucoin passphrase", "kucoin = ccxt.kucoin({'apiKey': '" + kcKey + "', 'secret': '" + kcSecret + "',\n  'password': '" + pass + "'})\n", pass, "kucoin-api-passphrase"},
		{"bitget key", "key = \"" + bgKey + "\"\n", bgKey, "bitget-api-key"},
		{"bitget secret", "bitget:\n  secret_key: " + bgSecret + "\n", bgSecret, "bitget-api-secret"},
		{"bitget passphrase", "BITGET_API_KEY=" + bgKey + "\nBITGET_PASSPHRASE=" + pass + "\n", pass, "bitget-api-passphrase"},
		{"gate key", "GATE_API_KEY=" + gateKey + "\n", gateKey, "gate-api-key"},
		{"gate secret", "gateio:\n  secret: " + gateSecret + "\n", gateSecret, "gate-api-secret"},
		{"deribit", "deribit_client_secret: " + deriSecret + "\n", deriSecret, "deribit-client-secret"},
		{"bitmex key", "BITMEX_API_KEY=" + mexKey + "\n", mexKey, "bitmex-api-key"},
		{"bitmex secret", "BITMEX_API_SECRET=" + mexSecret + "\n", mexSecret, "bitmex-api-secret"},
		{"hyperliquid", "# hyperliquid agent wallet\nHL_PRIVATE_KEY=" + hlKey + "\n", hlKey, "hyperliquid-private-key"},
		{"pem ec", ecPEM, "", "private-key-ec"},
		{"pem ed25519", "binance:\n" + pemKey(t, "ed25519"), "", "binance-private-key-ed25519"},
		{"pem rsa", pemKey(t, "rsa"), "", "private-key-rsa"},
		{"keywarden client id", "apiKey: " + kwID + "\n", kwID, "keywarden-client-id"},
		{"generic", "db_client_secret = \"" + generic + "\"\n", generic, "generic-secret"},
	}
}

func TestDetectors(t *testing.T) {
	s := New(Options{})
	for _, tt := range detectCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			got := s.ScanBytes("config.txt", []byte(tt.text))
			var f *Finding
			for i := range got {
				if got[i].Rule == tt.rule {
					f = &got[i]
				}
			}
			if f == nil {
				t.Fatalf("ScanBytes() = %v, want a %s finding (%.2f)", rulesOf(got), tt.rule, shannon([]byte(tt.value)))
			}
			if tt.value != "" {
				if want := redact([]byte(tt.value)); f.Redacted != want || f.Length != len(tt.value) {
					t.Errorf("finding = %s (%d), want %s (%d)", f.Redacted, f.Length, want, len(tt.value))
				}
				lines := strings.Split(tt.text, "\n")
				if !strings.Contains(lines[f.Line-1], tt.value) || !strings.HasPrefix(lines[f.Line-1][f.Column-1:], tt.value) {
					t.Errorf("finding at %d:%d, want the value's position", f.Line, f.Column)
				}
			}
			if strings.Contains(f.Redacted, tt.value) && tt.value != "" {
				t.Errorf("finding shows the secret")
			}
		})
	}
}

// TestDetectorsNeedContext: the same values without their venue's keyword
// or a credential name are not reported as that venue's keys.
func TestDetectorsNeedContext(t *testing.T) {
	s := New(Options{})
	for _, v := range []string{
		randString(t, alnumChars, 64), randUUID(t), strings.ToUpper(randHex(t, 32)), randHex(t, 64), randHex(t, 32),
		randHex(t, 24), randString(t, alnumChars, 36), randString(t, urlChars, 48), "0x" + randHex(t, 64),
		randB64(t, 64), base64.StdEncoding.EncodeToString(randBytes(t, 32)),
	} {
		for _, text := range []string{
			"value: " + v + "\n",
			"binance\n\n\n\n\n\n\n\nid = " + v + "\n", // the venue is too far above
			"| " + v + " |\n",
		} {
			if got := s.ScanBytes("data.txt", []byte(text)); len(got) != 0 {
				t.Errorf("ScanBytes(%q) = %v, want nothing", redact([]byte(text)), rulesOf(got))
			}
		}
	}
}

func TestRedactShowsAtMostFour(t *testing.T) {
	for _, v := range []string{"abcdefghijklmnopqrstuvwxyz", "12345678", "ab"} {
		got := redact([]byte(v))
		shown, _, _ := strings.Cut(got, "…")
		if len(shown) > 4 || len(shown) > len(v)/4 || !strings.HasSuffix(got, fmt.Sprintf("(%d chars)", len(v))) {
			t.Errorf("redact(%d chars) = %q, want at most 4 (and a quarter) shown and the length", len(v), got)
		}
	}
}

func TestInlineAllowAndExamples(t *testing.T) {
	s := New(Options{})
	secret := randString(t, alnumChars, 64)
	for _, text := range []string{
		"BINANCE_API_SECRET=" + secret + " # keywarden:allow\n",
		"# keywarden:allow\nBINANCE_API_SECRET=" + secret + "\n",
		"// test vector from the binance docs\nBINANCE_API_SECRET=" + secret + "\n",
		"# keywarden:allow\n" + pemKey(t, "ec"),
		// the key published in Binance's documentation
		"BINANCE_API_SECRET=NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j\n",
	} {
		if got := s.ScanBytes("x.env", []byte(text)); len(got) != 0 {
			t.Errorf("ScanBytes(allowed) = %v, want nothing", rulesOf(got))
		}
	}
	// The allow comment covers its own line and the next one only.
	text := "# keywarden:allow\n\nBINANCE_API_SECRET=" + secret + "\n"
	if got := s.ScanBytes("x.env", []byte(text)); len(got) != 1 {
		t.Errorf("ScanBytes(allow two lines above) = %v, want one finding", rulesOf(got))
	}
}

func TestElidedPEMIsNoFinding(t *testing.T) {
	s := New(Options{})
	text := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI...\n-----END EC PRIVATE KEY-----\n" +
		"-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("A", 80) + "\n-----END PRIVATE KEY-----\n"
	if got := s.ScanBytes("README.md", []byte(text)); len(got) != 0 {
		t.Errorf("ScanBytes(elided PEM) = %v, want nothing", rulesOf(got))
	}
}

func rulesOf(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s@%d:%d", f.Rule, f.Line, f.Column))
	}
	return out
}
