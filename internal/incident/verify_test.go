package incident

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/store/memory"
)

// bundleFile is one file of a bundle, in order.
type bundleFile struct {
	name string
	body []byte
}

func readBundle(t *testing.T, b []byte) []bundleFile {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []bundleFile
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bundleFile{h.Name, body})
	}
	return out
}

func writeBundle(t *testing.T, files []bundleFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// edit returns a copy of files with fn applied to the file named name.
func edit(files []bundleFile, name string, fn func([]byte) []byte) []bundleFile {
	out := make([]bundleFile, 0, len(files))
	for _, f := range files {
		if filepath.Base(f.name) == name {
			f.body = fn(bytes.Clone(f.body))
		}
		out = append(out, f)
	}
	return out
}

// exportSigned writes a signed bundle of a small incident with a real
// audit log, and returns it with the signing key.
func exportSigned(t *testing.T) ([]byte, ed25519.PrivateKey, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := audit.Open(audit.Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.Record{Type: audit.TypeEvent, Event: &audit.Event{Kind: "panic", Actor: "alice",
		Detail: map[string]string{"target": "binance/main", "reason": "leak"}}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	m := New(Options{Store: memory.New(), Now: func() time.Time { return t0 }})
	in, err := m.Open(ctx, "alice", "signed bundle")
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	var buf bytes.Buffer
	if _, err := Export(&buf, in, Evidence{AuditDir: dir, Now: t0.Add(time.Minute), SignKey: key}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), key, in.ID
}

func TestVerifyBundleAcceptsAnUntouchedBundle(t *testing.T) {
	b, key, id := exportSigned(t)
	pub := key.Public().(ed25519.PublicKey)
	for _, pinned := range []ed25519.PublicKey{nil, pub} {
		c, err := VerifyBundle(bytes.NewReader(b), pinned)
		if err != nil {
			t.Fatalf("VerifyBundle(pinned=%v) = %v", pinned != nil, err)
		}
		if c.Incident != id || len(c.Files) != 5 || !bytes.Equal(c.PublicKey, pub) || c.Pinned != (pinned != nil) {
			t.Errorf("check = %+v", c)
		}
	}
}

func TestExportRefusesToWriteUnsigned(t *testing.T) {
	in := &Incident{ID: "inc-x", Opened: t0}
	if _, err := Export(&bytes.Buffer{}, in, Evidence{Now: t0}); err == nil {
		t.Fatal("Export without a signing key = nil, want an error")
	}
}

func TestVerifyBundleDetectsTampering(t *testing.T) {
	b, key, _ := exportSigned(t)
	files := readBundle(t, b)
	_, other, _ := ed25519.GenerateKey(nil)
	otherPub := base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))
	// resign replaces the signature and the public key with other's.
	resign := func(fs []bundleFile) []bundleFile {
		var man []byte
		for _, f := range fs {
			if filepath.Base(f.name) == ManifestName {
				man = f.body
			}
		}
		fs = edit(fs, SignatureFile, func([]byte) []byte {
			return []byte(base64.StdEncoding.EncodeToString(SignManifest(other, man)) + "\n")
		})
		return edit(fs, PublicKeyFile, func([]byte) []byte { return []byte(otherPub + "\n") })
	}
	pub := key.Public().(ed25519.PublicKey)
	tests := []struct {
		name   string
		files  []bundleFile
		pinned ed25519.PublicKey
		want   string
	}{
		{"a file's content", edit(files, "incident.json", func(b []byte) []byte { return bytes.Replace(b, []byte("alice"), []byte("mallory"), 1) }),
			nil, "incident.json: SHA-256 or size does not match"},
		{"audit records", edit(files, "audit.jsonl", func(b []byte) []byte { return bytes.Replace(b, []byte("leak"), []byte("test"), 1) }),
			pub, "audit.jsonl: SHA-256 or size does not match"},
		{"the manifest", edit(files, ManifestName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"audit_records": 1`), []byte(`"audit_records": 0`), 1)
		}),
			nil, "manifest.sig: the signature over manifest.json does not verify"},
		{"the signature", edit(files, SignatureFile, func(b []byte) []byte {
			s, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
			s[0] ^= 1
			return []byte(base64.StdEncoding.EncodeToString(s))
		}), nil, "manifest.sig: the signature over manifest.json does not verify"},
		{"the public key alone", edit(files, PublicKeyFile, func([]byte) []byte { return []byte(otherPub) }),
			nil, "manifest.sig: the signature over manifest.json does not verify"},
		{"key and signature, pinned", resign(files), pub, "evidence.pub is not the pinned public key"},
		{"a manifest edit re-signed by another key, pinned", resign(edit(files, ManifestName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"audit_records": 1`), []byte(`"audit_records": 0`), 1)
		})), pub, "does not verify with the public key"},
		{"a file removed", files[1:], nil, "incident.json: listed in the manifest but missing"},
		{"a file added", append(append([]bundleFile{}, files...), bundleFile{files[0].name[:strings.Index(files[0].name, "/")+1] + "extra.txt", []byte("x")}),
			nil, "extra.txt: in the bundle but not in the manifest"},
		{"the signature removed", files[:len(files)-2], nil, "manifest.sig is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := VerifyBundle(bytes.NewReader(writeBundle(t, tt.files)), tt.pinned)
			if !errors.Is(err, ErrBundle) {
				t.Fatalf("VerifyBundle = %v, want ErrBundle", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("problems %q, want one containing %q", c.Problems, tt.want)
			}
		})
	}
	// Unpinned, a bundle re-signed by another key verifies: only a pinned
	// key proves where a bundle came from.
	if _, err := VerifyBundle(bytes.NewReader(writeBundle(t, resign(files))), nil); err != nil {
		t.Errorf("re-signed bundle without a pinned key = %v, want nil (integrity only)", err)
	}
}

func TestVerifyBundleRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("not a bundle"), writeBundle(t, []bundleFile{{"../x", []byte("a")}})} {
		if _, err := VerifyBundle(bytes.NewReader(b), nil); err == nil {
			t.Errorf("VerifyBundle(%q) = nil, want an error", b)
		}
	}
}
