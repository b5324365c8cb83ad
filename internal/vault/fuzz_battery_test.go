package vault

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzOpenRecord (spec/security.md Z8): a sealed record opens only for the
// kind and id it was sealed for, unchanged. Any mutation of the blob, or a
// different kind or id (the associated data), is ErrTampered — never a
// panic, never other plaintext.
func FuzzOpenRecord(f *testing.F) {
	ring, err := newKeyring(time.Unix(1700000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	plain := []byte("api_key=EXKEY\nsecret=KWMARKER-fuzz-secret")
	blob, err := sealRecord(ring, exchangeKind, "binance/main", 3, plain)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob, exchangeKind, "binance/main")
	f.Add(blob, exchangeKind, "binance/other")
	f.Add(blob, "audit", "binance/main")
	f.Add(blob[:len(blob)-1], exchangeKind, "binance/main")
	f.Add(append(bytes.Clone(blob), 0), exchangeKind, "binance/main")
	f.Add([]byte{}, exchangeKind, "binance/main")
	f.Add([]byte("KWS1"), exchangeKind, "binance/main")
	f.Fuzz(func(t *testing.T, b []byte, kind, id string) {
		got, version, err := openRecord(ring, kind, id, b)
		same := bytes.Equal(b, blob) && kind == exchangeKind && id == "binance/main"
		if same {
			if err != nil || !bytes.Equal(got, plain) || version != 3 {
				t.Fatalf("the original record did not open: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("a changed record (%d bytes, kind %q, id %q) opened to %q", len(b), kind, id, got)
		}
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("open of a changed record = %v, want ErrTampered", err)
		}
	})
}

// FuzzUnmarshalManifest feeds arbitrary bytes to the version manifest's
// decoder (the MAC is checked first in use; the decoder must still never
// panic): what decodes encodes back to the same bytes.
func FuzzUnmarshalManifest(f *testing.F) {
	m := &manifest{Generation: 3, Records: map[string]versionEntry{"a/b": {Version: 2}, "c/d": {Version: 5, Deleted: true}}}
	b, err := m.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := unmarshalManifest(b)
		if err != nil {
			return
		}
		again, err := m.marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("marshal(unmarshal(% x)) = % x, %v", b, again, err)
		}
	})
}

// FuzzDecodeShard feeds arbitrary bytes to the manifest shard decoder (a
// shard is checked against its hash in the head first; the decoder must
// still never panic): what decodes encodes back to the same bytes.
func FuzzDecodeShard(f *testing.F) {
	b, err := encodeShard(shardOf("a/b"), map[string]versionEntry{"a/b": {Version: 2, Deleted: true}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(shardMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		i, recs, err := decodeShard(b)
		if err != nil {
			return
		}
		again, err := encodeShard(i, recs)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("encodeShard(decodeShard(% x)) = % x, %v", b, again, err)
		}
	})
}

// FuzzUnmarshalHead does the same for the manifest head's body.
func FuzzUnmarshalHead(f *testing.F) {
	f.Add(marshalHead(&versionTable{Generation: 3}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := unmarshalHead(b)
		if err != nil {
			return
		}
		if again := marshalHead(h); !bytes.Equal(again, b) {
			t.Fatalf("marshalHead(unmarshalHead(% x)) = % x", b, again)
		}
	})
}
