package hyperliquid

import (
	"bytes"
	"testing"
)

// FuzzEnvelope: no body makes parsing panic, and a body keywarden accepts
// hashes the same after keywarden re-encodes it (Verify re-encodes before
// the Signer hashes, so a difference would sign another action).
func FuzzEnvelope(f *testing.F) {
	for _, a := range []string{actDummy, actOrder, actOrderCloid, actTrigger, actSub, actSubXfer, actSched, actSchedTime, orderAction,
		`{"type":"usdSend","signatureChainId":"0x66eee","hyperliquidChain":"Mainnet","destination":"0x5e9ee1089755c3435139848e47e6635505d5a13a","amount":"1","time":7}`} {
		f.Add(unsigned(a, 7))
	}
	f.Add([]byte(`{"action":{"type":"x","n":-1.5e3,"s":"\u00e9"},"nonce":1,"vaultAddress":"0x1719884eb866cb12b2287399b15f7db5e7d775ea","expiresAfter":9}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := parseEnvelope(body)
		if err != nil {
			return
		}
		d1, err := env.digest(Mainnet)
		if err != nil {
			return
		}
		enc, err := env.encode()
		if err != nil {
			t.Fatalf("encode of an accepted body failed: %v", err)
		}
		env2, err := parseEnvelope(enc)
		if err != nil {
			t.Fatalf("re-encoded body %s does not parse: %v", enc, err)
		}
		d2, err := env2.digest(Mainnet)
		if err != nil || !bytes.Equal(d1, d2) {
			t.Fatalf("re-encoded body %s hashes differently (%v)", enc, err)
		}
	})
}
