package vault

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/keywarden/keywarden/internal/exchange"
)

func pemBytes(t *testing.T, typ string, der []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestCredentialKinds(t *testing.T) {
	ctx := context.Background()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPKCS8, err := x509.MarshalPKCS8PrivateKey(edKey)
	rsaPKCS8, err2 := x509.MarshalPKCS8PrivateKey(rsaKey)
	ecSEC1, err3 := x509.MarshalECPrivateKey(ecKey)
	if err != nil || err2 != nil || err3 != nil {
		t.Fatal(err, err2, err3)
	}
	badPair := append(append([]byte(nil), edKey.Seed()...), make([]byte, 32)...)

	tests := []struct {
		name    string
		kind    exchange.KeyKind
		secret  []byte
		public  crypto.PublicKey
		wantErr bool
	}{
		{"ed25519 pkcs8 pem", exchange.KeyEd25519, pemBytes(t, "PRIVATE KEY", edPKCS8, nil), edKey.Public(), false},
		{"ed25519 coinbase base64 64 bytes", exchange.KeyEd25519, []byte(base64.StdEncoding.EncodeToString(edKey)), edKey.Public(), false},
		{"ed25519 base64 seed", exchange.KeyEd25519, []byte(base64.StdEncoding.EncodeToString(edKey.Seed()) + "\n"), edKey.Public(), false},
		{"ed25519 mismatched public half", exchange.KeyEd25519, []byte(base64.StdEncoding.EncodeToString(badPair)), nil, true},
		{"rsa pkcs1 pem", exchange.KeyRSA, pemBytes(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil), rsaKey.Public(), false},
		{"rsa pkcs8 pem", exchange.KeyRSA, pemBytes(t, "PRIVATE KEY", rsaPKCS8, nil), rsaKey.Public(), false},
		{"ecdsa sec1 pem", exchange.KeyECDSA, pemBytes(t, "EC PRIVATE KEY", ecSEC1, nil), ecKey.Public(), false},
		{"rsa key declared ecdsa", exchange.KeyECDSA, pemBytes(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil), nil, true},
		{"truncated pem", exchange.KeyRSA, pemBytes(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)[:100], nil), nil, true},
	}
	v := initPassphrase(t, newEnv())
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "k" + string(rune('a'+i))
			_, err := v.AddKey(ctx, KeyInput{Exchange: "coinbase", Name: name, Kind: tt.kind, APIKey: "organizations/x/apiKeys/" + name, Secret: tt.secret})
			if tt.wantErr {
				if err == nil {
					t.Fatal("AddKey() = nil, want an error")
				}
				if strings.Contains(err.Error(), "PRIVATE") || strings.Contains(err.Error(), string(tt.secret[:20])) {
					t.Errorf("AddKey() error %q shows key material", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("AddKey() = %v", err)
			}
			c, err := v.Credential(ctx, "coinbase", name)
			if err != nil {
				t.Fatalf("Credential() = %v", err)
			}
			if c.Kind != tt.kind || c.PrivateKey == nil || c.Secret != nil {
				t.Fatalf("Credential() = %v, want a %s private key and no HMAC secret", c, tt.kind)
			}
			if pk, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(tt.public) {
				t.Fatalf("Credential().PublicKey does not match the key added")
			}
			msg := []byte("GET /api/v3/brokerage/accounts")
			digest := sha256.Sum256(msg)
			switch k := c.PrivateKey.(type) {
			case ed25519.PrivateKey:
				if !ed25519.Verify(tt.public.(ed25519.PublicKey), msg, ed25519.Sign(k, msg)) {
					t.Error("ed25519 signature does not verify")
				}
			case *rsa.PrivateKey:
				sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
				if err != nil || rsa.VerifyPKCS1v15(tt.public.(*rsa.PublicKey), crypto.SHA256, digest[:], sig) != nil {
					t.Error("rsa signature does not verify")
				}
			case *ecdsa.PrivateKey:
				sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
				if err != nil || !ecdsa.VerifyASN1(tt.public.(*ecdsa.PublicKey), digest[:], sig) {
					t.Error("ecdsa signature does not verify")
				}
			}
		})
	}
}
