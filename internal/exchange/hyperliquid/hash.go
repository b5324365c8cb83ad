package hyperliquid

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/keywarden/keywarden/internal/eip712"
)

// l1Domain is the domain of phantom-agent signatures.
var l1Domain = eip712.Domain{Name: "Exchange", Version: "1", ChainID: 1337}

var agentTypes = eip712.Types{"Agent": {{Name: "source", Type: "string"}, {Name: "connectionId", Type: "bytes32"}}}

// ActionHash is the connectionId of an L1 action: keccak256(msgpack(action)
// ‖ nonce (8 bytes BE) ‖ 0x00 | 0x01 ‖ vault (20 bytes) ‖ [0x00 ‖
// expiresAfter (8 bytes BE)]). vault and expiresAfter may be nil.
func ActionHash(action any, nonce uint64, vault *eip712.Address, expiresAfter *uint64) ([]byte, error) {
	data, err := eip712.Msgpack(action)
	if err != nil {
		return nil, err
	}
	data = append(data, eip712.BigEndian64(nonce)...)
	if vault == nil {
		data = append(data, 0)
	} else {
		data = append(data, 1)
		data = append(data, vault[:]...)
	}
	if expiresAfter != nil {
		data = append(data, 0)
		data = append(data, eip712.BigEndian64(*expiresAfter)...)
	}
	return eip712.Keccak256(data), nil
}

// L1Digest is the EIP-712 digest of the phantom agent for connectionID.
func L1Digest(connectionID []byte, net Network) []byte {
	// eip712.Digest, with the fixed domain's separator hashed once.
	sh, err := agentTypes.HashStruct("Agent", map[string]any{
		"source": net.source(), "connectionId": connectionID,
	})
	if err != nil {
		panic("hyperliquid: agent digest: " + err.Error()) // fixed types, 32-byte id
	}
	return eip712.Keccak256([]byte{0x19, 0x01}, l1Separator(), sh)
}

// l1Separator is l1Domain's separator, which never changes.
var l1Separator = sync.OnceValue(func() []byte { return l1Domain.Separator() })

// userSigned describes one user-signed action type: its EIP-712 primary
// type, its members, and the member that carries the nonce.
type userSigned struct {
	primary  string
	fields   []eip712.Field
	nonceKey string
}

func f(name, typ string) eip712.Field { return eip712.Field{Name: name, Type: typ} }

// userSignedActions are the user-signed action types (spec §13a.2).
var userSignedActions = map[string]userSigned{
	"usdSend": {"HyperliquidTransaction:UsdSend", []eip712.Field{
		f("hyperliquidChain", "string"), f("destination", "string"), f("amount", "string"), f("time", "uint64")}, "time"},
	"spotSend": {"HyperliquidTransaction:SpotSend", []eip712.Field{
		f("hyperliquidChain", "string"), f("destination", "string"), f("token", "string"), f("amount", "string"), f("time", "uint64")}, "time"},
	"withdraw3": {"HyperliquidTransaction:Withdraw", []eip712.Field{
		f("hyperliquidChain", "string"), f("destination", "string"), f("amount", "string"), f("time", "uint64")}, "time"},
	"usdClassTransfer": {"HyperliquidTransaction:UsdClassTransfer", []eip712.Field{
		f("hyperliquidChain", "string"), f("amount", "string"), f("toPerp", "bool"), f("nonce", "uint64")}, "nonce"},
	"sendAsset": {"HyperliquidTransaction:SendAsset", []eip712.Field{
		f("hyperliquidChain", "string"), f("destination", "string"), f("sourceDex", "string"), f("destinationDex", "string"),
		f("token", "string"), f("amount", "string"), f("fromSubAccount", "string"), f("nonce", "uint64")}, "nonce"},
	"approveAgent": {"HyperliquidTransaction:ApproveAgent", []eip712.Field{
		f("hyperliquidChain", "string"), f("agentAddress", "address"), f("agentName", "string"), f("nonce", "uint64")}, "nonce"},
	"approveBuilderFee": {"HyperliquidTransaction:ApproveBuilderFee", []eip712.Field{
		f("hyperliquidChain", "string"), f("maxFeeRate", "string"), f("builder", "address"), f("nonce", "uint64")}, "nonce"},
	"tokenDelegate": {"HyperliquidTransaction:TokenDelegate", []eip712.Field{
		f("hyperliquidChain", "string"), f("validator", "address"), f("wei", "uint64"), f("isUndelegate", "bool"), f("nonce", "uint64")}, "nonce"},
}

// IsUserSigned says whether actions of type typ are user-signed (master
// wallet only) rather than L1.
func IsUserSigned(typ string) bool {
	_, ok := userSignedActions[typ]
	return ok
}

// UserSignedDigest is the EIP-712 digest of a user-signed action. It checks
// that hyperliquidChain names net and that the action has exactly the
// members its type signs plus type and signatureChainId (agentName may be
// absent, meaning ""). It returns the nonce the action carries.
func UserSignedDigest(action *eip712.Object, net Network) ([]byte, uint64, error) {
	typ, _ := stringMember(action, "type")
	us, ok := userSignedActions[typ]
	if !ok {
		return nil, 0, fmt.Errorf("action %q is not user-signed", typ)
	}
	chainHex, ok := stringMember(action, "signatureChainId")
	if !ok || !strings.HasPrefix(chainHex, "0x") || len(chainHex) > 18 {
		return nil, 0, errors.New("signatureChainId must be a 0x-hex chain id")
	}
	chainID, err := strconv.ParseUint(chainHex[2:], 16, 64)
	if err != nil || chainID == 0 {
		return nil, 0, errors.New("signatureChainId must be a 0x-hex chain id")
	}
	if c, _ := stringMember(action, "hyperliquidChain"); c != net.Chain() {
		return nil, 0, fmt.Errorf("hyperliquidChain must be %q", net.Chain())
	}
	allowed := map[string]bool{"type": true, "signatureChainId": true}
	msg := map[string]any{}
	var nonce uint64
	for _, fl := range us.fields {
		allowed[fl.Name] = true
		v, present := action.Get(fl.Name)
		if !present {
			if typ == "approveAgent" && fl.Name == "agentName" {
				msg[fl.Name] = ""
				continue
			}
			return nil, 0, fmt.Errorf("action %s: %s missing", typ, fl.Name)
		}
		switch fl.Type {
		case "uint64":
			n, ok := v.(json.Number)
			if !ok {
				return nil, 0, fmt.Errorf("action %s: %s must be an integer", typ, fl.Name)
			}
			u, err := strconv.ParseUint(string(n), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("action %s: %s must be an unsigned integer", typ, fl.Name)
			}
			msg[fl.Name] = u
			if fl.Name == us.nonceKey {
				nonce = u
			}
		case "bool":
			b, ok := v.(bool)
			if !ok {
				return nil, 0, fmt.Errorf("action %s: %s must be a boolean", typ, fl.Name)
			}
			msg[fl.Name] = b
		case "address":
			s, ok := v.(string)
			if !ok {
				return nil, 0, fmt.Errorf("action %s: %s must be an address", typ, fl.Name)
			}
			if _, err := eip712.ParseAddress(s); err != nil {
				return nil, 0, fmt.Errorf("action %s: %s: %w", typ, fl.Name, err)
			}
			msg[fl.Name] = s
		default:
			s, ok := v.(string)
			if !ok {
				return nil, 0, fmt.Errorf("action %s: %s must be a string", typ, fl.Name)
			}
			msg[fl.Name] = s
		}
	}
	for _, k := range action.Keys {
		if !allowed[k] {
			return nil, 0, fmt.Errorf("action %s: unexpected member %s", typ, exchangeSafe(k))
		}
	}
	dom := eip712.Domain{Name: "HyperliquidSignTransaction", Version: "1", ChainID: chainID}
	d, err := eip712.Digest(dom, eip712.Types{us.primary: us.fields}, us.primary, msg)
	if err != nil {
		return nil, 0, err
	}
	return d, nonce, nil
}

func stringMember(o *eip712.Object, k string) (string, bool) {
	v, ok := o.Get(k)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// exchangeSafe keeps a caller-chosen name printable and short for errors.
func exchangeSafe(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return strconv.Quote(string(b))
}
