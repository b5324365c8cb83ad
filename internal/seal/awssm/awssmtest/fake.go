// Package awssmtest is an in-memory fake of AWS Secrets Manager's
// GetSecretValue over the JSON 1.1 protocol (POST /, X-Amz-Target:
// secretsmanager.GetSecretValue), with its error shape: status 400 and
// {"__type": "ResourceNotFoundException" | "AccessDeniedException" |
// "UnrecognizedClientException", "message": ...}. A request must carry a
// SigV4 Authorization header for the secretsmanager service with a known
// access key id; the signature itself is not checked.
package awssmtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Server is the fake.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	secrets map[string]string
	access  map[string]map[string]bool
}

// New starts the fake on loopback.
func New(t testing.TB) *Server {
	s := &Server{secrets: make(map[string]string), access: make(map[string]map[string]bool)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Put stores a SecretString under name.
func (s *Server) Put(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = value
}

// Allow lets the access key id read the named secrets.
func (s *Server) Allow(accessKeyID string, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.access[accessKeyID] == nil {
		s.access[accessKeyID] = make(map[string]bool)
	}
	for _, n := range names {
		s.access[accessKeyID][n] = true
	}
}

func fail(w http.ResponseWriter, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		fail(w, "UnknownOperationException", "")
		return
	}
	auth := r.Header.Get("Authorization")
	akid := ""
	if rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 Credential="); ok {
		cred, _, _ := strings.Cut(rest, ",")
		if parts := strings.Split(cred, "/"); len(parts) == 5 && parts[3] == "secretsmanager" {
			akid = parts[0]
		}
	}
	allowed, ok := s.access[akid]
	if !ok {
		fail(w, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	var req struct {
		SecretID string `json:"SecretId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.SecretID == "" {
		fail(w, "InvalidParameterException", "SecretId is required")
		return
	}
	name := req.SecretID
	if i := strings.Index(name, ":secret:"); strings.HasPrefix(name, "arn:") && i >= 0 {
		name = name[i+len(":secret:"):]
	}
	v, ok := s.secrets[name]
	if !ok {
		fail(w, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	if !allowed[name] {
		fail(w, "AccessDeniedException", "User is not authorized to perform: secretsmanager:GetSecretValue")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:" + name, "Name": name,
		"SecretString": v, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"},
	})
}
