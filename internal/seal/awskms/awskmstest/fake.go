// Package awskmstest is an in-memory fake of the AWS KMS JSON 1.1 API
// (POST /, X-Amz-Target: TrentService.<Operation>, Content-Type
// application/x-amz-json-1.1) for the operations keywarden's seal uses:
// Encrypt, Decrypt and GenerateDataKey, with encryption context, key ids,
// ARNs and aliases, and KMS's error shape ({"__type": ..., "message": ...}
// with status 400): NotFoundException, DisabledException,
// InvalidCiphertextException, IncorrectKeyException, AccessDeniedException
// and UnrecognizedClientException. Requests must carry a SigV4
// Authorization header whose access key id the fake knows; the signature
// itself is not checked.
package awskmstest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Region and Account are the fake's region and account in ARNs.
const (
	Region  = "eu-west-1"
	Account = "111122223333"
)

// Server is the fake.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	keys    map[string]*key // key id → key
	aliases map[string]string
	access  map[string]map[string]bool // access key id → key ids it may use
	calls   map[string]int
}

type key struct {
	aead    cipher.AEAD
	enabled bool
}

// New starts the fake on loopback (plain HTTP).
func New(t testing.TB) *Server {
	s := &Server{
		keys:    make(map[string]*key),
		aliases: make(map[string]string),
		access:  make(map[string]map[string]bool),
		calls:   make(map[string]int),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// AddKey creates a symmetric key and returns its key id.
func (s *Server) AddKey() string {
	b := make([]byte, 32+16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	blk, _ := aes.NewCipher(b[:32])
	g, _ := cipher.NewGCM(blk)
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[32:36], b[36:38], b[38:40], b[40:42], b[42:48])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[id] = &key{aead: g, enabled: true}
	return id
}

// ARN returns the key ARN of id.
func ARN(id string) string { return "arn:aws:kms:" + Region + ":" + Account + ":key/" + id }

// AddAlias points alias/name at the key id.
func (s *Server) AddAlias(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aliases["alias/"+name] = id
}

// Disable disables a key.
func (s *Server) Disable(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[id].enabled = false
}

// Allow lets the access key id use the key ids.
func (s *Server) Allow(accessKeyID string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.access[accessKeyID] == nil {
		s.access[accessKeyID] = make(map[string]bool)
	}
	for _, id := range ids {
		s.access[accessKeyID][id] = true
	}
}

// Calls returns how many requests named the operation.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func fail(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

// request is the union of the fields the three operations take. []byte
// fields are base64 in JSON, as KMS's blobs are.
type request struct {
	KeyID             string            `json:"KeyId"`
	Plaintext         []byte            `json:"Plaintext"`
	CiphertextBlob    []byte            `json:"CiphertextBlob"`
	EncryptionContext map[string]string `json:"EncryptionContext"`
	KeySpec           string            `json:"KeySpec"`
	NumberOfBytes     int               `json:"NumberOfBytes"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if r.Method != http.MethodPost || r.URL.Path != "/" || !ok {
		fail(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	s.calls[op]++
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		fail(w, http.StatusBadRequest, "SerializationException", "unexpected Content-Type "+ct)
		return
	}
	akid := accessKeyID(r.Header.Get("Authorization"))
	allowed, ok := s.access[akid]
	if !ok {
		fail(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "SerializationException", "could not parse the request")
		return
	}
	switch op {
	case "Encrypt", "GenerateDataKey":
		id, k, ok := s.resolve(w, req.KeyID, allowed)
		if !ok {
			return
		}
		plain := req.Plaintext
		if op == "GenerateDataKey" {
			n := req.NumberOfBytes
			switch {
			case req.KeySpec == "AES_256" && n == 0:
				n = 32
			case req.KeySpec == "AES_128" && n == 0:
				n = 16
			case req.KeySpec != "" || n < 1 || n > 1024:
				fail(w, http.StatusBadRequest, "ValidationException", "specify either KeySpec or NumberOfBytes")
				return
			}
			plain = make([]byte, n)
			_, _ = rand.Read(plain)
		} else if len(plain) == 0 || len(plain) > 4096 {
			fail(w, http.StatusBadRequest, "ValidationException", "Plaintext must be 1 to 4096 bytes")
			return
		}
		nonce := make([]byte, k.aead.NonceSize())
		_, _ = rand.Read(nonce)
		blob := append([]byte{byte(len(id))}, id...)
		blob = append(blob, nonce...)
		blob = k.aead.Seal(blob, nonce, plain, contextAAD(req.EncryptionContext))
		out := map[string]any{"CiphertextBlob": blob, "KeyId": ARN(id)}
		if op == "GenerateDataKey" {
			out["Plaintext"] = plain
		} else {
			out["EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT"
		}
		reply(w, out)
	case "Decrypt":
		b := req.CiphertextBlob
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
			return
		}
		blobID := string(b[1 : 1+int(b[0])])
		if req.KeyID != "" {
			id, _, ok := s.resolve(w, req.KeyID, allowed)
			if !ok {
				return
			}
			if id != blobID {
				fail(w, http.StatusBadRequest, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
				return
			}
		}
		_, k, ok := s.resolve(w, blobID, allowed)
		if !ok {
			return
		}
		rest := b[1+int(b[0]):]
		n := k.aead.NonceSize()
		if len(rest) < n+k.aead.Overhead() {
			fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
			return
		}
		plain, err := k.aead.Open(nil, rest[:n], rest[n:], contextAAD(req.EncryptionContext))
		if err != nil {
			fail(w, http.StatusBadRequest, "InvalidCiphertextException", "")
			return
		}
		reply(w, map[string]any{"Plaintext": plain, "KeyId": ARN(blobID), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	default:
		fail(w, http.StatusBadRequest, "UnknownOperationException", "")
	}
}

// resolve finds the key a KeyId names (id, ARN, alias or alias ARN) and
// checks access, writing the error itself when it fails.
func (s *Server) resolve(w http.ResponseWriter, ref string, allowed map[string]bool) (string, *key, bool) {
	id := ref
	if i := strings.Index(ref, ":key/"); strings.HasPrefix(ref, "arn:") && i >= 0 {
		id = ref[i+len(":key/"):]
	} else if i := strings.Index(ref, ":alias/"); strings.HasPrefix(ref, "arn:") && i >= 0 {
		id = s.aliases[ref[i+1:]]
	} else if strings.HasPrefix(ref, "alias/") {
		id = s.aliases[ref]
	}
	k, ok := s.keys[id]
	if !ok {
		fail(w, http.StatusBadRequest, "NotFoundException", "Key '"+ARN(ref)+"' does not exist")
		return "", nil, false
	}
	if !allowed[id] {
		fail(w, http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform kms operations on this resource")
		return "", nil, false
	}
	if !k.enabled {
		fail(w, http.StatusBadRequest, "DisabledException", ARN(id)+" is disabled.")
		return "", nil, false
	}
	return id, k, true
}

// contextAAD is a canonical encoding of an encryption context.
func contextAAD(ec map[string]string) []byte {
	names := make([]string, 0, len(ec))
	for k := range ec {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, k := range names {
		fmt.Fprintf(&b, "%s=%s\x00", hex.EncodeToString([]byte(k)), hex.EncodeToString([]byte(ec[k])))
	}
	return b.Bytes()
}

// accessKeyID takes the access key id from a SigV4 Authorization header.
func accessKeyID(auth string) string {
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return ""
	}
	for _, part := range strings.Split(rest, ",") {
		if cred, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
			akid, _, _ := strings.Cut(cred, "/")
			return akid
		}
	}
	return ""
}
