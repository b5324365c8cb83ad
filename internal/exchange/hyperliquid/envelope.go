package hyperliquid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/keywarden/keywarden/internal/eip712"
)

// envelope is a POST /exchange body:
// {"action":{...},"nonce":N,"signature":{"r","s","v"},"vaultAddress":…,"expiresAfter":…}.
type envelope struct {
	Action     *eip712.Object
	Type       string
	Nonce      uint64
	Sig        *eip712.Signature // nil when absent
	HasVault   bool              // the member is present (possibly null)
	Vault      *eip712.Address   // nil when absent or null
	Expires    *uint64
	HasExpires bool
}

// parseEnvelope reads a /exchange body strictly: known members only, no
// duplicates, an action object with a string type.
func parseEnvelope(body []byte) (*envelope, error) {
	v, err := eip712.DecodeOrdered(body)
	if err != nil {
		return nil, err
	}
	top, ok := v.(*eip712.Object)
	if !ok {
		return nil, errors.New("body must be a JSON object")
	}
	e := &envelope{}
	hasNonce := false
	for i, k := range top.Keys {
		val := top.Values[i]
		switch k {
		case "action":
			a, ok := val.(*eip712.Object)
			if !ok {
				return nil, errors.New("action must be an object")
			}
			e.Action = a
		case "nonce":
			n, err := uintOf(val)
			if err != nil {
				return nil, fmt.Errorf("nonce: %w", err)
			}
			e.Nonce, hasNonce = n, true
		case "signature":
			s, err := parseSig(val)
			if err != nil {
				return nil, err
			}
			e.Sig = s
		case "vaultAddress":
			e.HasVault = true
			if val == nil {
				continue
			}
			s, ok := val.(string)
			if !ok {
				return nil, errors.New("vaultAddress must be an address or null")
			}
			a, err := eip712.ParseAddress(s)
			if err != nil {
				return nil, fmt.Errorf("vaultAddress: %w", err)
			}
			e.Vault = &a
		case "expiresAfter":
			e.HasExpires = true
			if val == nil {
				continue
			}
			n, err := uintOf(val)
			if err != nil {
				return nil, fmt.Errorf("expiresAfter: %w", err)
			}
			e.Expires = &n
		default:
			return nil, fmt.Errorf("unexpected member %s", exchangeSafe(k))
		}
	}
	if e.Action == nil {
		return nil, errors.New("action missing")
	}
	if !hasNonce {
		return nil, errors.New("nonce missing")
	}
	t, ok := stringMember(e.Action, "type")
	if !ok || t == "" {
		return nil, errors.New("action type missing")
	}
	e.Type = t
	return e, nil
}

func uintOf(v any) (uint64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("must be an integer")
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		return 0, errors.New("must be an unsigned 64-bit integer")
	}
	return u, nil
}

func parseSig(v any) (*eip712.Signature, error) {
	o, ok := v.(*eip712.Object)
	if !ok || len(o.Keys) != 3 {
		return nil, errors.New("signature must be {r, s, v}")
	}
	var sig eip712.Signature
	for i, k := range o.Keys {
		switch k {
		case "r", "s":
			s, ok := o.Values[i].(string)
			if !ok {
				return nil, errors.New("signature r and s must be 0x-hex strings")
			}
			w, err := eip712.ParseWord(s)
			if err != nil {
				return nil, fmt.Errorf("signature %s: %w", k, err)
			}
			if k == "r" {
				sig.R = w
			} else {
				sig.S = w
			}
		case "v":
			n, err := uintOf(o.Values[i])
			if err != nil || (n != 27 && n != 28) {
				return nil, errors.New("signature v must be 27 or 28")
			}
			sig.V = byte(n)
		default:
			return nil, errors.New("signature must be {r, s, v}")
		}
	}
	return &sig, nil
}

// userSigned reports whether the envelope's action is user-signed.
func (e *envelope) userSigned() bool { return IsUserSigned(e.Type) }

// digest is what the envelope's signature must cover on net. For
// user-signed actions the outer nonce must equal the action's own.
func (e *envelope) digest(net Network) ([]byte, error) {
	if e.userSigned() {
		d, n, err := UserSignedDigest(e.Action, net)
		if err != nil {
			return nil, err
		}
		if n != e.Nonce {
			return nil, errors.New("nonce must equal the action's time/nonce")
		}
		return d, nil
	}
	h, err := ActionHash(e.Action, e.Nonce, e.Vault, e.Expires)
	if err != nil {
		return nil, err
	}
	return L1Digest(h, net), nil
}

// setNonce sets the envelope's nonce and, for user-signed actions, the
// action's own nonce member.
func (e *envelope) setNonce(n uint64) {
	e.Nonce = n
	if us, ok := userSignedActions[e.Type]; ok {
		e.Action.Set(us.nonceKey, json.Number(strconv.FormatUint(n, 10)))
	}
}

// encode writes the envelope as the SDK does: action, nonce, signature,
// vaultAddress, expiresAfter (the last two when present).
func (e *envelope) encode() ([]byte, error) {
	var b bytes.Buffer
	act, err := eip712.MarshalJSON(e.Action)
	if err != nil {
		return nil, err
	}
	b.WriteString(`{"action":`)
	b.Write(act)
	b.WriteString(`,"nonce":`)
	b.WriteString(strconv.FormatUint(e.Nonce, 10))
	if e.Sig != nil {
		fmt.Fprintf(&b, `,"signature":{"r":"%s","s":"%s","v":%d}`, eip712.WordHex(e.Sig.R), eip712.WordHex(e.Sig.S), e.Sig.V)
	}
	if e.HasVault {
		if e.Vault == nil {
			b.WriteString(`,"vaultAddress":null`)
		} else {
			b.WriteString(`,"vaultAddress":"` + e.Vault.Hex() + `"`)
		}
	}
	if e.HasExpires {
		if e.Expires == nil {
			b.WriteString(`,"expiresAfter":null`)
		} else {
			b.WriteString(`,"expiresAfter":` + strconv.FormatUint(*e.Expires, 10))
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func jsonNumber(s string) json.Number { return json.Number(s) }
