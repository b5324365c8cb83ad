package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
)

// sensitiveFields are JSON names under which venues return secrets: new key
// secrets from key-management calls, session tokens from auth calls. The
// gateway never passes their values to a bot; a bot holding a venue session
// token could bypass keywarden.
var sensitiveFields = []string{
	"secret", "secretKey", "secret_key", "apiSecret", "api_secret", "client_secret", "clientSecret",
	"passphrase", "access_token", "refresh_token", "accessToken", "refreshToken", "privateKey", "private_key",
}

// redactedValue replaces every sensitive value.
const redactedValue = "[withheld by keywarden]"

// scrubSensitive replaces the values of sensitive fields anywhere in a JSON
// body. Bodies that mention none of the names are returned unchanged, byte
// for byte; so are bodies that are not JSON.
func scrubSensitive(b []byte) []byte {
	if !mentionsSensitive(b) {
		return b
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return b
	}
	if !redactTree(v) {
		return b
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// maxSensitiveName is the length of the longest name in sensitiveFields.
const maxSensitiveName = len("client_secret")

// mentionsSensitive says whether b may hold a sensitive field, in one pass
// over its quoted strings: a string that is one of the names in any case
// (as isSensitive matches them), or any string with an escape, which could
// spell one. A false answer means the body needs no decoding.
func mentionsSensitive(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '"')
		if i < 0 {
			return false
		}
		b = b[i+1:]
		j := bytes.IndexByte(b, '"')
		if j < 0 {
			return false
		}
		s := b[:j]
		b = b[j+1:]
		if len(s) > maxSensitiveName {
			if bytes.IndexByte(s, '\\') >= 0 {
				return true
			}
			continue
		}
		if bytes.IndexByte(s, '\\') >= 0 || isSensitive(string(s)) {
			return true
		}
	}
}

func redactTree(v any) bool {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if isSensitive(k) {
				if s, ok := x.(string); ok && s == "" {
					continue
				}
				t[k] = redactedValue
				changed = true
				continue
			}
			if redactTree(x) {
				changed = true
			}
		}
	case []any:
		for _, x := range t {
			if redactTree(x) {
				changed = true
			}
		}
	}
	return changed
}

func isSensitive(k string) bool {
	for _, f := range sensitiveFields {
		if strings.EqualFold(k, f) {
			return true
		}
	}
	return false
}
