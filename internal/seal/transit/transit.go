// Package transit is a seal backend over the transit secrets engine of
// HashiCorp Vault or OpenBao. It is a small HTTP client of our own for the
// documented endpoints:
//
//	POST /v1/<mount>/encrypt/<key>   {"plaintext": base64, "context": base64}
//	POST /v1/<mount>/decrypt/<key>   {"ciphertext": "vault:v1:...", "context": base64}
//	POST /v1/auth/approle/login      {"role_id": ..., "secret_id": ...}
//	POST /v1/auth/token/renew-self   {}
//	GET  /v1/<mount>/data/<path>     (KV version 2, for key import)
//
// Wrap asks transit to encrypt a fresh random data key and seals the root
// key locally under that data key with AES-256-GCM and the additional data,
// so the additional data is authenticated whether or not the transit key is
// derived. With a derived key, the additional data is also sent as the
// transit context.
//
// Authentication is a token read from a file (or VAULT_TOKEN), or an
// AppRole login with the role id and secret id read from files. A login
// token is renewed before it expires and replaced by a new login when it
// cannot be renewed or is refused. Tokens never appear in argv, logs or
// errors.
package transit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/seal"
)

// Type is the seal type recorded in the vault's seal configuration.
const Type = "transit"

// Config configures a transit seal.
type Config struct {
	// Address is the server's base URL, https://host:8200. Plain http is
	// accepted only for a loopback host.
	Address string
	// Mount is the transit engine's mount path (default "transit").
	Mount string
	// Key is the transit key's name.
	Key string
	// Derived sends the additional data as the transit context; the key
	// must have been created with derived=true.
	Derived bool
	// Namespace is sent as X-Vault-Namespace when set (Vault Enterprise,
	// OpenBao namespaces).
	Namespace string
	// CAFile is a PEM bundle of the CAs that sign the server's
	// certificate; empty means the system roots.
	CAFile string

	// TokenFile holds a token (mode 0600). It is read again when the
	// server refuses the token, so an agent may rotate it.
	TokenFile string
	// Token is used when no file or AppRole is set (from VAULT_TOKEN; the
	// caller reads it, this package does not read the environment).
	Token []byte
	// RoleIDFile and SecretIDFile select AppRole login (mode 0600).
	RoleIDFile, SecretIDFile string
	// AppRoleMount is the AppRole auth mount (default "approle").
	AppRoleMount string

	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Now is the clock for token expiry; nil means time.Now.
	Now func() time.Time
	// HTTPClient overrides the client built from CAFile (tests).
	HTTPClient *http.Client
}

// Seal is a transit seal. It is safe for concurrent use.
type Seal struct {
	cfg  Config
	base *url.URL
	hc   *http.Client
	now  func() time.Time

	mu        sync.Mutex
	token     []byte
	expires   time.Time // zero: no known expiry
	renewable bool
}

// New checks cfg and returns a seal. It does not contact the server.
func New(cfg Config) (*Seal, error) { return newSeal(cfg, true) }

func newSeal(cfg Config, transitKey bool) (*Seal, error) {
	if !transitKey {
		cfg.Mount, cfg.Key = "-", "-"
	}
	if cfg.Mount == "" {
		cfg.Mount = "transit"
	}
	if cfg.AppRoleMount == "" {
		cfg.AppRoleMount = "approle"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Mount = strings.Trim(cfg.Mount, "/")
	if cfg.Key == "" || strings.ContainsAny(cfg.Key, "/?#") || !validPath(cfg.Mount) || !validPath(cfg.AppRoleMount) {
		return nil, errors.New("transit seal: mount and key name are required (key without /, ? or #)")
	}
	base, err := url.Parse(cfg.Address)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") || base.User != nil {
		return nil, errors.New("transit seal: address must be https://host[:port]")
	}
	if base.Scheme == "http" && !isLoopback(base.Hostname()) {
		return nil, fmt.Errorf("transit seal: plain http is only allowed to a loopback address, not %s", base.Hostname())
	}
	base.Path, base.RawQuery, base.Fragment = strings.TrimSuffix(base.Path, "/"), "", ""
	approle := cfg.RoleIDFile != "" || cfg.SecretIDFile != ""
	switch {
	case approle && (cfg.RoleIDFile == "" || cfg.SecretIDFile == ""):
		return nil, errors.New("transit seal: AppRole needs both a role id file and a secret id file")
	case approle && (cfg.TokenFile != "" || len(cfg.Token) > 0):
		return nil, errors.New("transit seal: choose a token or AppRole, not both")
	case !approle && cfg.TokenFile == "" && len(cfg.Token) == 0:
		return nil, errors.New("transit seal: no credentials: set a token file, VAULT_TOKEN, or AppRole role id and secret id files")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("transit seal: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("transit seal: CA file %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: cfg.Timeout,
			MaxIdleConns:        4,
			IdleConnTimeout:     time.Minute,
		}
		hc = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	}
	// Never follow a redirect: it would carry the token elsewhere.
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Seal{cfg: cfg, base: base, hc: &c, now: now}
	if len(cfg.Token) > 0 {
		s.token = append([]byte(nil), cfg.Token...)
	}
	return s, nil
}

func validPath(p string) bool {
	if p == "" || strings.ContainsAny(p, "?#") || strings.Contains(p, "..") {
		return false
	}
	return !strings.HasPrefix(p, "/") && !strings.HasSuffix(p, "/")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Type implements vault.SealWrapper.
func (s *Seal) Type() string { return Type }

// KeyID implements vault.SealWrapper: "<mount>/<key>".
func (s *Seal) KeyID() string { return s.cfg.Mount + "/" + s.cfg.Key }

// String names the seal without credentials.
func (s *Seal) String() string {
	return fmt.Sprintf("transit %s key %s", s.base.Redacted(), s.KeyID())
}

// Close forgets the token.
func (s *Seal) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.token)
	s.token = nil
}

// Wrap implements vault.SealWrapper.
func (s *Seal) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	dek, err := seal.NewDataKey()
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	req := map[string]string{"plaintext": base64.StdEncoding.EncodeToString(dek)}
	if s.cfg.Derived {
		req["context"] = base64.StdEncoding.EncodeToString(aad)
	}
	var resp struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	if err := s.call(ctx, http.MethodPost, s.cfg.Mount+"/encrypt/"+s.cfg.Key, req, &resp); err != nil {
		return nil, fmt.Errorf("%s: encrypt: %w", s, err)
	}
	if !strings.HasPrefix(resp.Data.Ciphertext, "vault:v") {
		return nil, fmt.Errorf("%s: encrypt: response has no vault:v ciphertext", s)
	}
	sealed, err := seal.SealLocal(dek, plaintext, aad)
	if err != nil {
		return nil, err
	}
	return seal.Envelope{WrappedKey: []byte(resp.Data.Ciphertext), Sealed: sealed}.Encode()
}

// Unwrap implements vault.SealWrapper.
func (s *Seal) Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error) {
	env, err := seal.DecodeEnvelope(blob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	if !strings.HasPrefix(string(env.WrappedKey), "vault:v") {
		return nil, fmt.Errorf("%s: wrapped key is not a transit ciphertext: %w", s, seal.ErrAuth)
	}
	req := map[string]string{"ciphertext": string(env.WrappedKey)}
	if s.cfg.Derived {
		req["context"] = base64.StdEncoding.EncodeToString(aad)
	}
	var resp struct {
		Data struct {
			Plaintext string `json:"plaintext"`
		} `json:"data"`
	}
	if err := s.call(ctx, http.MethodPost, s.cfg.Mount+"/decrypt/"+s.cfg.Key, req, &resp); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusBadRequest {
			// transit says 400 for a ciphertext that does not decrypt.
			return nil, fmt.Errorf("%s: decrypt: %w (%w)", s, err, seal.ErrAuth)
		}
		return nil, fmt.Errorf("%s: decrypt: %w", s, err)
	}
	dek, err := base64.StdEncoding.DecodeString(resp.Data.Plaintext)
	if err != nil || len(dek) != seal.DataKeySize {
		clear(dek)
		return nil, fmt.Errorf("%s: decrypt returned no 32-byte data key: %w", s, seal.ErrAuth)
	}
	defer clear(dek)
	out, err := seal.OpenLocal(dek, env.Sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return out, nil
}

// StatusError is an error response from the server: its status code and
// the messages of its "errors" array.
type StatusError struct {
	Code     int
	Messages []string
}

func (e *StatusError) Error() string {
	msg := strings.Join(e.Messages, "; ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	switch {
	case e.Code == http.StatusForbidden && msg == "":
		msg = "permission denied"
	case msg == "":
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("server answered %d: %s", e.Code, msg)
}

// ErrUnreachable is wrapped by errors from a server that could not be
// reached at all.
var ErrUnreachable = errors.New("server unreachable")

// call sends one authenticated request, renewing or replacing the token as
// needed: a 403 is retried once with a fresh token (a new AppRole login, or
// the token file read again).
func (s *Seal) call(ctx context.Context, method, path string, body, out any) error {
	tok, err := s.currentToken(ctx)
	if err != nil {
		return err
	}
	err = s.do(ctx, method, path, tok, body, out)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		return err
	}
	fresh, ferr := s.refreshToken(ctx, tok)
	if ferr != nil {
		return fmt.Errorf("%w; getting a new token: %w", err, ferr)
	}
	if fresh == nil {
		return err
	}
	return s.do(ctx, method, path, fresh, body, out)
}

// currentToken returns the token to use, logging in or renewing first if
// it is missing or about to expire.
func (s *Seal) currentToken(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == nil {
		if err := s.obtainLocked(ctx); err != nil {
			return nil, err
		}
		return s.token, nil
	}
	if s.expires.IsZero() {
		return s.token, nil
	}
	left := s.expires.Sub(s.now())
	if left > 30*time.Second {
		return s.token, nil
	}
	if s.renewable && left > 0 {
		if err := s.renewLocked(ctx); err == nil {
			return s.token, nil
		}
	}
	if s.approle() {
		if err := s.loginLocked(ctx); err != nil {
			return nil, err
		}
		return s.token, nil
	}
	return s.token, nil
}

// refreshToken replaces a refused token: a new AppRole login, or the token
// file read again. It returns nil when there is nothing new to try.
func (s *Seal) refreshToken(ctx context.Context, refused []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bytes.Equal(s.token, refused) {
		return s.token, nil // another request already replaced it
	}
	switch {
	case s.approle():
		if err := s.loginLocked(ctx); err != nil {
			return nil, err
		}
		return s.token, nil
	case s.cfg.TokenFile != "":
		t, err := seal.ReadSecretFile("transit token", s.cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(t, refused) {
			clear(t)
			return nil, nil
		}
		clear(s.token)
		s.token = t
		return s.token, nil
	}
	return nil, nil
}

func (s *Seal) approle() bool { return s.cfg.RoleIDFile != "" }

func (s *Seal) obtainLocked(ctx context.Context) error {
	if s.approle() {
		return s.loginLocked(ctx)
	}
	t, err := seal.ReadSecretFile("transit token", s.cfg.TokenFile)
	if err != nil {
		return err
	}
	s.token = t
	return nil
}

type authResponse struct {
	Auth *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

func (s *Seal) setAuthLocked(a authResponse) error {
	if a.Auth == nil || a.Auth.ClientToken == "" {
		return errors.New("response has no auth.client_token")
	}
	clear(s.token)
	s.token = []byte(a.Auth.ClientToken)
	s.renewable = a.Auth.Renewable
	s.expires = time.Time{}
	if a.Auth.LeaseDuration > 0 {
		s.expires = s.now().Add(time.Duration(a.Auth.LeaseDuration) * time.Second)
	}
	return nil
}

func (s *Seal) loginLocked(ctx context.Context) error {
	role, err := seal.ReadSecretFile("AppRole role id", s.cfg.RoleIDFile)
	if err != nil {
		return err
	}
	defer clear(role)
	secret, err := seal.ReadSecretFile("AppRole secret id", s.cfg.SecretIDFile)
	if err != nil {
		return err
	}
	defer clear(secret)
	var resp authResponse
	body := map[string]string{"role_id": string(role), "secret_id": string(secret)}
	if err := s.do(ctx, http.MethodPost, "auth/"+s.cfg.AppRoleMount+"/login", nil, body, &resp); err != nil {
		return fmt.Errorf("AppRole login: %w", err)
	}
	if err := s.setAuthLocked(resp); err != nil {
		return fmt.Errorf("AppRole login: %w", err)
	}
	return nil
}

func (s *Seal) renewLocked(ctx context.Context) error {
	var resp authResponse
	if err := s.do(ctx, http.MethodPost, "auth/token/renew-self", s.token, map[string]string{}, &resp); err != nil {
		return fmt.Errorf("token renewal: %w", err)
	}
	return s.setAuthLocked(resp)
}

// do sends one request and decodes a 2xx JSON answer into out. Any other
// answer is a *StatusError.
func (s *Seal) do(ctx context.Context, method, path string, token []byte, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	u := *s.base
	u.Path = s.base.Path + "/v1/" + path
	var rd io.Reader
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
		defer clear(raw)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != nil {
		req.Header.Set("X-Vault-Token", string(token))
	}
	if s.cfg.Namespace != "" {
		req.Header.Set("X-Vault-Namespace", s.cfg.Namespace)
	}
	req.Header.Set("X-Vault-Request", "true")
	resp, err := s.hc.Do(req)
	if err != nil {
		// url.Error repeats the URL, which holds no secret; the token is in
		// a header and never printed.
		return fmt.Errorf("%w: %w", ErrUnreachable, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: reading the answer: %w", ErrUnreachable, err)
	}
	defer clear(data)
	if resp.StatusCode/100 != 2 {
		var e struct {
			Errors []string `json:"errors"`
		}
		_ = json.Unmarshal(data, &e)
		return &StatusError{Code: resp.StatusCode, Messages: e.Errors}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("answer is not the expected JSON: %w", err)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
