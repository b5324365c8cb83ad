package exchange

import "net/http"

// SingleHeader returns the one value of header name and whether it is
// present. More than one value is an ErrAuth *Error: an ambiguous credential
// must not be guessed at.
func SingleHeader(h http.Header, name string) (string, bool, error) {
	vs := h[name]
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", true, Errorf(ErrAuth, "repeated %s header", name)
}

// ValidKeyID says whether k looks like an API key id: 1 to 128 bytes of
// printable ASCII without spaces.
func ValidKeyID(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= 0x20 || k[i] >= 0x7f {
			return false
		}
	}
	return true
}
