// Package tlsca gives the gateway a certificate when the operator brings
// none: a local certificate authority whose key is sealed by the vault, and
// short-lived server certificates it issues for the gateway's names. Bots
// trust the CA printed by `keywarden tls ca`.
//
// Security: the CA key is a secret; it never leaves the vault in clear except
// in memory while a certificate is issued.
package tlsca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/keywarden/keywarden/internal/store"
)

// Secrets seals and opens the CA key. The vault implements it.
type Secrets interface {
	PutSecret(ctx context.Context, kind, id string, secret []byte) error
	Secret(ctx context.Context, kind, id string) ([]byte, error)
}

const (
	secretKind = "tls"
	caKeyID    = "ca-key"
	caCertKey  = "tls/ca-cert"
)

// CA is the local certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// LoadOrCreate returns the CA kept in st (certificate) and sec (key),
// creating both the first time.
func LoadOrCreate(ctx context.Context, st store.Store, sec Secrets, now time.Time) (*CA, error) {
	certPEM, err := st.Get(ctx, caCertKey)
	if err == nil {
		keyDER, err := sec.Secret(ctx, secretKind, caKeyID)
		if err != nil {
			return nil, fmt.Errorf("tls ca: open key: %w", err)
		}
		defer clear(keyDER)
		key, err := x509.ParseECPrivateKey(keyDER)
		if err != nil {
			return nil, fmt.Errorf("tls ca: key: %w", err)
		}
		blk, _ := pem.Decode(certPEM)
		if blk == nil {
			return nil, errors.New("tls ca: stored certificate is not PEM")
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tls ca: certificate: %w", err)
		}
		return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "keywarden local CA", Organization: []string{"keywarden"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	defer clear(keyDER)
	if err := sec.PutSecret(ctx, secretKind, caKeyID, keyDER); err != nil {
		return nil, fmt.Errorf("tls ca: seal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := st.Put(ctx, caCertKey, certPEM); err != nil {
		return nil, fmt.Errorf("tls ca: store certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

// ServerCertificate issues a certificate for hosts (names or addresses),
// valid for 30 days from now.
func (ca *CA) ServerCertificate(hosts []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "keywarden gateway"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 30),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return n
}
