package seal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvelope(t *testing.T) {
	e := Envelope{WrappedKey: []byte("vault:v1:abc"), Sealed: []byte{1, 2, 3}}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEnvelope(b)
	if err != nil || !bytes.Equal(got.WrappedKey, e.WrappedKey) || !bytes.Equal(got.Sealed, e.Sealed) {
		t.Fatalf("DecodeEnvelope(Encode()) = %+v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"empty":         nil,
		"magic":         append([]byte("kwse2"), b[5:]...),
		"short length":  b[:6],
		"length beyond": b[:len(b)-4],
		"zero length":   append([]byte("kwse1\x00\x00"), 1),
	} {
		if _, err := DecodeEnvelope(bad); !errors.Is(err, ErrAuth) {
			t.Errorf("DecodeEnvelope(%s) = %v, want ErrAuth", name, err)
		}
	}
	if _, err := (Envelope{}).Encode(); err == nil {
		t.Error("Encode with no wrapped key succeeded")
	}
}

func TestSealLocal(t *testing.T) {
	k, err := NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := SealLocal(k, []byte("root"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenLocal(k, s, []byte("aad")); err != nil || string(got) != "root" {
		t.Fatalf("OpenLocal() = %q, %v", got, err)
	}
	if _, err := OpenLocal(k, s, []byte("other")); !errors.Is(err, ErrAuth) {
		t.Errorf("OpenLocal(other aad) = %v, want ErrAuth", err)
	}
	k[0] ^= 1
	if _, err := OpenLocal(k, s, []byte("aad")); !errors.Is(err, ErrAuth) {
		t.Errorf("OpenLocal(other key) = %v, want ErrAuth", err)
	}
	if _, err := OpenLocal(k[:16], s, []byte("aad")); !errors.Is(err, ErrAuth) {
		t.Errorf("OpenLocal(short key) = %v, want ErrAuth", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  s3cret-pin\n", 0o600)
	if got, err := ReadSecretFile("PIN", good); err != nil || string(got) != "s3cret-pin" {
		t.Fatalf("ReadSecretFile() = %q, %v", got, err)
	}
	tests := []struct{ path, want string }{
		{write("loose", "s3cret-pin", 0o640), "mode 0640"},
		{write("empty", " \n", 0o600), "empty"},
		{filepath.Join(dir, "missing"), "does not exist"},
		{dir, "not a regular file"},
	}
	for _, tt := range tests {
		_, err := ReadSecretFile("PIN", tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "PIN file") {
			t.Errorf("ReadSecretFile(%s) = %v, want %q", tt.path, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q holds the content", err)
		}
	}
}
