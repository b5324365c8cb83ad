// Package transittest is an in-memory fake of the parts of the HashiCorp
// Vault / OpenBao HTTP API the transit seal and key import use, following
// the documented request and response shapes: transit encrypt and decrypt
// (with context for derived keys), AppRole login, token renew-self and KV
// version 2 reads, with Vault's error shape ({"errors": [...]}, 400 for bad
// input, 403 "permission denied" for a missing, expired or unauthorised
// token). It runs on an httptest server (TLS by default).
package transittest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the fake. Its exported methods configure it from tests.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	now     time.Time
	keys    map[string]*transitKey // "mount/name"
	tokens  map[string]*token
	roles   map[string]role // role id → role
	kv      map[string]map[string]any
	calls   map[string]int
	headers http.Header // last request's headers
}

type transitKey struct {
	key     []byte
	derived bool
}

type token struct {
	expires   time.Time // zero: never
	renewable bool
	ttl       time.Duration
	policies  map[string]bool // "mount/name" transit keys it may use, "kv:mount/path"
}

type role struct {
	secretID string
	ttl      time.Duration
	policies []string
}

// New starts a TLS fake. The caller may read CAFile for the CA bundle.
func New(t testing.TB) *Server {
	s := newServer()
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// NewPlain starts a plain-HTTP fake on loopback.
func NewPlain(t testing.TB) *Server {
	s := newServer()
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func newServer() *Server {
	return &Server{
		now:    time.Unix(1_800_000_000, 0),
		keys:   make(map[string]*transitKey),
		tokens: make(map[string]*token),
		roles:  make(map[string]role),
		kv:     make(map[string]map[string]any),
		calls:  make(map[string]int),
	}
}

// CAFile writes the server's certificate as a PEM CA bundle into dir and
// returns its path.
func (s *Server) CAFile(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "transit-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// AddKey creates a transit key at mount/name.
func (s *Server) AddKey(mount, name string, derived bool) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[mount+"/"+name] = &transitKey{key: k, derived: derived}
}

// AddToken creates a token allowed to use the given transit keys
// ("mount/name") and KV paths ("kv:mount/path"); a zero ttl never expires.
func (s *Server) AddToken(policies ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addTokenLocked(0, false, policies)
}

func (s *Server) addTokenLocked(ttl time.Duration, renewable bool, policies []string) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	tok := "hvs.fake" + hex.EncodeToString(b)
	t := &token{ttl: ttl, renewable: renewable, policies: make(map[string]bool)}
	for _, p := range policies {
		t.policies[p] = true
	}
	if ttl > 0 {
		t.expires = s.now.Add(ttl)
	}
	s.tokens[tok] = t
	return tok
}

// AddRole creates an AppRole whose logins get renewable tokens with ttl
// and policies. It returns the role id and secret id.
func (s *Server) AddRole(ttl time.Duration, policies ...string) (roleID, secretID string) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	roleID, secretID = "role-"+hex.EncodeToString(b[:12]), "secret-"+hex.EncodeToString(b[12:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleID] = role{secretID: secretID, ttl: ttl, policies: policies}
	return roleID, secretID
}

// RevokeAll revokes every token.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Advance moves the fake's clock.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

// Now is the fake's clock, for the client's Config.Now.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// PutKV stores a KV version 2 secret at mount/path.
func (s *Server) PutKV(mount, path string, data map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv[mount+"/"+path] = data
}

// Calls returns how many requests reached each endpoint kind ("encrypt",
// "decrypt", "login", "renew", "kv").
func (s *Server) Calls(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[kind]
}

// LastHeaders returns the headers of the last request.
func (s *Server) LastHeaders() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.headers.Clone()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msgs ...string) {
	writeJSON(w, code, map[string][]string{"errors": msgs})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers = r.Header.Clone()
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
			fail(w, http.StatusBadRequest, "failed to parse JSON input: "+err.Error())
			return
		}
	}
	switch {
	case strings.HasPrefix(path, "auth/") && strings.HasSuffix(path, "/login") && r.Method == http.MethodPost:
		s.calls["login"]++
		s.login(w, body)
	case path == "auth/token/renew-self" && r.Method == http.MethodPost:
		s.calls["renew"]++
		t := s.auth(r)
		if t == nil || !t.renewable {
			fail(w, http.StatusForbidden, "permission denied")
			return
		}
		t.expires = s.now.Add(t.ttl)
		writeJSON(w, http.StatusOK, map[string]any{"auth": map[string]any{
			"client_token": r.Header.Get("X-Vault-Token"), "lease_duration": int(t.ttl.Seconds()), "renewable": true,
		}})
	case strings.Contains(path, "/encrypt/") && r.Method == http.MethodPost:
		s.calls["encrypt"]++
		mount, name, _ := strings.Cut(path, "/encrypt/")
		s.transit(w, r, mount, name, body, true)
	case strings.Contains(path, "/decrypt/") && r.Method == http.MethodPost:
		s.calls["decrypt"]++
		mount, name, _ := strings.Cut(path, "/decrypt/")
		s.transit(w, r, mount, name, body, false)
	case strings.Contains(path, "/data/") && r.Method == http.MethodGet:
		s.calls["kv"]++
		mount, p, _ := strings.Cut(path, "/data/")
		t := s.auth(r)
		if t == nil || !t.policies["kv:"+mount+"/"+p] {
			fail(w, http.StatusForbidden, "permission denied")
			return
		}
		data, ok := s.kv[mount+"/"+p]
		if !ok {
			fail(w, http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"data": data, "metadata": map[string]any{"version": 1, "destroyed": false},
		}})
	default:
		fail(w, http.StatusNotFound)
	}
}

// auth returns the request's live token, or nil.
func (s *Server) auth(r *http.Request) *token {
	t := s.tokens[r.Header.Get("X-Vault-Token")]
	if t == nil || (!t.expires.IsZero() && !s.now.Before(t.expires)) {
		return nil
	}
	return t
}

func (s *Server) login(w http.ResponseWriter, body map[string]any) {
	roleID, _ := body["role_id"].(string)
	secretID, _ := body["secret_id"].(string)
	ro, ok := s.roles[roleID]
	if !ok || roleID == "" {
		fail(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	if !hmac.Equal([]byte(secretID), []byte(ro.secretID)) {
		fail(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	tok := s.addTokenLocked(ro.ttl, true, ro.policies)
	writeJSON(w, http.StatusOK, map[string]any{"auth": map[string]any{
		"client_token": tok, "lease_duration": int(ro.ttl.Seconds()), "renewable": true,
		"policies": ro.policies, "token_policies": ro.policies,
	}})
}

func (s *Server) transit(w http.ResponseWriter, r *http.Request, mount, name string, body map[string]any, encrypt bool) {
	t := s.auth(r)
	if t == nil || !t.policies[mount+"/"+name] {
		fail(w, http.StatusForbidden, "permission denied")
		return
	}
	k, ok := s.keys[mount+"/"+name]
	if !ok {
		fail(w, http.StatusBadRequest, "encryption key not found")
		return
	}
	key := k.key
	if k.derived {
		c, _ := body["context"].(string)
		ctx, err := base64.StdEncoding.DecodeString(c)
		if c == "" || err != nil {
			fail(w, http.StatusBadRequest, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key")
			return
		}
		m := hmac.New(sha256.New, k.key)
		m.Write(ctx)
		key = m.Sum(nil)
	}
	b, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(b)
	if encrypt {
		p, _ := body["plaintext"].(string)
		plain, err := base64.StdEncoding.DecodeString(p)
		if err != nil {
			fail(w, http.StatusBadRequest, "failed to base64-decode plaintext")
			return
		}
		nonce := make([]byte, g.NonceSize())
		_, _ = rand.Read(nonce)
		ct := g.Seal(nonce, nonce, plain, nil)
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
			"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(ct), "key_version": 1,
		}})
		return
	}
	c, _ := body["ciphertext"].(string)
	rest, ok := strings.CutPrefix(c, "vault:v1:")
	if !ok {
		fail(w, http.StatusBadRequest, "invalid ciphertext: no prefix")
		return
	}
	ct, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(ct) < g.NonceSize()+g.Overhead() {
		fail(w, http.StatusBadRequest, "invalid ciphertext: could not decode")
		return
	}
	plain, err := g.Open(nil, ct[:g.NonceSize()], ct[g.NonceSize():], nil)
	if err != nil {
		fail(w, http.StatusBadRequest, "cipher: message authentication failed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(plain),
	}})
}
