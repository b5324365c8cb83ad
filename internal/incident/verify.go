package incident

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// Names of the bundle files that carry the manifest's signature.
const (
	ManifestName  = "manifest.json"
	SignatureFile = "manifest.sig"
	PublicKeyFile = "evidence.pub"
)

// signContext separates evidence signatures from every other use of
// Ed25519 in keywarden: the signed message is this line and then the
// manifest's bytes exactly as bundled.
const signContext = "keywarden evidence bundle v1\n"

// SignManifest signs a bundle's manifest.json bytes.
func SignManifest(key ed25519.PrivateKey, manifest []byte) []byte {
	return ed25519.Sign(key, append([]byte(signContext), manifest...))
}

// Limits on what VerifyBundle reads: a bundle is a few files of bounded
// size; anything larger is refused rather than read into memory.
const (
	maxBundleFiles = 64
	maxBundleBytes = 1 << 30
)

// BundleCheck is the outcome of verifying an evidence bundle.
type BundleCheck struct {
	Incident string
	// Files are the manifest's files, each verified against its hash.
	Files []string
	// PublicKey is the key the signature was checked with; Pinned says
	// whether the caller gave it (otherwise it is the bundle's own
	// evidence.pub, which proves integrity but not origin).
	PublicKey ed25519.PublicKey
	Pinned    bool
	// Problems name everything that failed; empty when the bundle is good.
	Problems []string
}

// OK reports whether nothing failed.
func (c *BundleCheck) OK() bool { return len(c.Problems) == 0 }

// ErrBundle is wrapped by VerifyBundle's error when a check fails.
var ErrBundle = errors.New("evidence bundle does not verify")

// VerifyBundle reads an evidence bundle (tar.gz) and checks every file's
// size and SHA-256 against manifest.json, that no file is missing or
// added, and manifest.sig over manifest.json with pinned when given (the
// bundle's evidence.pub must then be that key), else with evidence.pub.
// It returns every problem found, and an error wrapping ErrBundle when
// there is one; a bundle it cannot read at all is an error alone.
func VerifyBundle(r io.Reader, pinned ed25519.PublicKey) (*BundleCheck, error) {
	if pinned != nil && len(pinned) != ed25519.PublicKeySize {
		return nil, errors.New("verify bundle: the public key is not an Ed25519 public key")
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("verify bundle: not a tar.gz: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	var order []string
	dir := ""
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("verify bundle: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("verify bundle: %q is not a regular file", h.Name)
		}
		d, name := path.Split(h.Name)
		if dir == "" {
			dir = d
		}
		if d != dir || name == "" || strings.Count(h.Name, "/") != 1 {
			return nil, fmt.Errorf("verify bundle: unexpected entry %q (want every file in one directory)", h.Name)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("verify bundle: %s appears twice", name)
		}
		if len(files) == maxBundleFiles || h.Size < 0 || total+h.Size > maxBundleBytes {
			return nil, errors.New("verify bundle: too many files or too large")
		}
		total += h.Size
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("verify bundle: %s: %w", name, err)
		}
		files[name] = b
		order = append(order, name)
	}
	c := &BundleCheck{Incident: strings.TrimSuffix(dir, "/")}
	fail := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }

	manBytes, ok := files[ManifestName]
	var man Manifest
	switch {
	case !ok:
		fail("%s is missing", ManifestName)
	case json.Unmarshal(manBytes, &man) != nil:
		fail("%s is not a valid manifest", ManifestName)
	default:
		if man.Incident != c.Incident {
			fail("%s names incident %q but the bundle's directory is %q", ManifestName, man.Incident, c.Incident)
		}
		listed := map[string]bool{}
		for _, f := range man.Files {
			listed[f.Name] = true
			body, ok := files[f.Name]
			if !ok {
				fail("%s: listed in the manifest but missing from the bundle", f.Name)
				continue
			}
			sum := sha256.Sum256(body)
			want, err := hex.DecodeString(f.SHA256)
			if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 || len(body) != f.Size {
				fail("%s: SHA-256 or size does not match the manifest (file altered)", f.Name)
				continue
			}
			c.Files = append(c.Files, f.Name)
		}
		for _, name := range order {
			if !listed[name] && !slices.Contains([]string{ManifestName, SignatureFile, PublicKeyFile}, name) {
				fail("%s: in the bundle but not in the manifest (file added)", name)
			}
		}
	}

	var embedded ed25519.PublicKey
	if b, ok := files[PublicKeyFile]; ok {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != ed25519.PublicKeySize {
			fail("%s is not an Ed25519 public key", PublicKeyFile)
		} else {
			embedded = k
		}
	}
	switch {
	case pinned != nil:
		c.PublicKey, c.Pinned = pinned, true
		if embedded != nil && !bytes.Equal(embedded, pinned) {
			fail("%s is not the pinned public key (the bundle was signed, or re-signed, by another key)", PublicKeyFile)
		}
	case embedded != nil:
		c.PublicKey = embedded
	default:
		fail("no public key: %s is missing and none was given", PublicKeyFile)
	}
	sigText, ok := files[SignatureFile]
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigText)))
	switch {
	case !ok:
		fail("%s is missing: the bundle is unsigned", SignatureFile)
	case err != nil || len(sig) != ed25519.SignatureSize:
		fail("%s is not an Ed25519 signature", SignatureFile)
	case c.PublicKey != nil && manBytes != nil:
		if !ed25519.Verify(c.PublicKey, append([]byte(signContext), manBytes...), sig) {
			fail("%s: the signature over %s does not verify with the public key %s", SignatureFile, ManifestName,
				base64.StdEncoding.EncodeToString(c.PublicKey))
		}
	}
	if !c.OK() {
		return c, fmt.Errorf("%w: %s", ErrBundle, strings.Join(c.Problems, "; "))
	}
	return c, nil
}
