package scan

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"math"
)

// rule is one detector over tokens.
type rule struct {
	id, venue, what string
	severity        Severity
	// shape checks length and character classes.
	shape func(*tokenInfo) bool
	// minEntropy is the least Shannon entropy (bits per character).
	minEntropy float64
	// venueKW: one must appear (not preceded by a letter) in the token's
	// line, the lines before it, or the source's name. Lower case.
	venueKW []string
	// credKW: one must appear in the name the token is assigned to, or
	// else in its line before it. notKW: none may. Lower case.
	credKW, notKW []string
	// keyOnly requires an assignment name (no fall-back to the line).
	keyOnly bool
	// verify is a final, exact check (a key that proves itself).
	verify func([]byte) bool
	// public returns the PKIX DER of the key's public half, for the
	// matcher.
	public func([]byte) []byte
}

// Context keyword sets.
var (
	secretKW  = []string{"secret", "private", "priv_key", "privkey"}
	keyKW     = []string{"key", "access"}
	anyCredKW = []string{"key", "secret", "token", "cred", "auth", "access", "private"}
	// Generic assignments that name a secret.
	// A bare "token" is an asset in this trade (token address, token id):
	// only the kinds of token that authenticate count.
	genericKW = []string{"secret", "passw", "private_key", "privatekey", "private-key",
		"api_key", "apikey", "api-key", "access_key", "accesskey", "auth_key", "credential",
		"access_token", "accesstoken", "auth_token", "authtoken", "api_token", "apitoken",
		"refresh_token", "refreshtoken", "bot_token", "bearer"}
	// ... unless the name says it is a digest or public value.
	genericNotKW = []string{"hash", "sha", "digest", "checksum", "integrity", "nonce", "salt", "public",
		"pubkey", "signature", "_id", "-id", "tokenizer", "csrf", "etag", "version"}
	krakenNotKW = []string{"authent", "sign", "hash", "digest", "nonce", "challenge"}
	hashyNotKW  = []string{"hash", "sha", "digest", "checksum", "integrity", "signature", "sig", "address",
		"addr", "txid", "tx_", "root", "nonce", "public", "pubkey"}

	binanceKW  = []string{"binance", "x-mbx-apikey"}
	usdmKW     = []string{"binanceusdm", "binance-usdm", "binance_usdm", "usdm", "fapi.binance", "binance-futures", "binance_futures", "binancefutures"}
	krakenKW   = []string{"kraken"}
	krakenFKW  = []string{"krakenfutures", "kraken-futures", "kraken_futures", "futures.kraken", "kraken futures"}
	okxKW      = []string{"okx", "okex", "ok-access"}
	bybitKW    = []string{"bybit", "x-bapi", "bytick"}
	kucoinKW   = []string{"kucoin", "kc-api"}
	bitgetKW   = []string{"bitget"}
	gateKW     = []string{"gateio", "gate.io", "gate_", "gate-", "gate ", "gate\"", "gate'", "gate:", "gate="}
	deribitKW  = []string{"deribit"}
	bitmexKW   = []string{"bitmex"}
	coinbaseKW = []string{"coinbase", "cdp_", "cdp-", "cdp "}
	hlKW       = []string{"hyperliquid"}
)

// Shapes.

func only(t *tokenInfo, allowed uint8) bool { return t.cls&^allowed == 0 }

// alnum: n letters and digits mixing upper, lower and digits.
func alnum(n int) func(*tokenInfo) bool {
	return func(t *tokenInfo) bool {
		return len(t.b) == n && !t.padded && only(t, cAlnum) && t.cls&cDigit != 0 && t.cls&cLower != 0 && t.cls&cUpper != 0
	}
}

// hexN: n hex digits of one case, with digits and letters.
func hexN(n int) func(*tokenInfo) bool {
	return func(t *tokenInfo) bool {
		if len(t.b) != n || t.padded || t.cls&cDigit == 0 {
			return false
		}
		return (only(t, cDigit|cLowerHex) && t.cls&cLowerHex != 0) || (only(t, cDigit|cUpperHex) && t.cls&cUpperHex != 0)
	}
}

// uuid: 8-4-4-4-12 hex digits of one case.
func uuid(t *tokenInfo) bool {
	b := t.b
	if len(b) != 36 || t.padded || !only(t, cDigit|cLowerHex|cDash) && !only(t, cDigit|cUpperHex|cDash) {
		return false
	}
	for i, c := range b {
		dash := i == 8 || i == 13 || i == 18 || i == 23
		if dash != (c == '-') {
			return false
		}
	}
	return true
}

// b64: n characters of standard base64 decoding to one of the sizes.
func b64(n int, sizes ...int) func(*tokenInfo) bool {
	return func(t *tokenInfo) bool {
		if len(t.b) != n || !only(t, cB64) || bitsSet(t.cls) < 3 {
			return false
		}
		k := decodedLen(t.b)
		for _, s := range sizes {
			if k == s {
				return true
			}
		}
		return false
	}
}

// decodedLen is the decoded size of standard base64 b, or -1.
func decodedLen(b []byte) int {
	if len(b)%4 == 0 {
		if d, err := base64.StdEncoding.DecodeString(string(b)); err == nil {
			return len(d)
		}
		return -1
	}
	if d, err := base64.RawStdEncoding.DecodeString(string(b)); err == nil {
		return len(d)
	}
	return -1
}

// b64url: n characters of the URL-safe alphabet mixing classes.
func b64url(n int) func(*tokenInfo) bool {
	return func(t *tokenInfo) bool {
		return len(t.b) == n && !t.padded && only(t, cB64URL) && bitsSet(t.cls) == 3
	}
}

func hasPrefixHex(prefix string, n int) func(*tokenInfo) bool {
	return func(t *tokenInfo) bool {
		if len(t.b) != len(prefix)+n || !bytes.HasPrefix(t.b, []byte(prefix)) || t.padded {
			return false
		}
		rest := t.b[len(prefix):]
		for _, c := range rest {
			if classOf[c]&(cDigit|cLowerHex|cUpperHex) == 0 {
				return false
			}
		}
		return true
	}
}

// cdpName: organizations/{org}/apiKeys/{key}.
func cdpName(t *tokenInfo) bool {
	b := t.b
	if !bytes.HasPrefix(b, []byte("organizations/")) {
		return false
	}
	i := bytes.Index(b, []byte("/apiKeys/"))
	if i <= len("organizations/") || bytes.Count(b, []byte("/")) != 3 {
		return false
	}
	// The key id is a UUID: long, with digits ("test-api-key" is not).
	id := b[i+len("/apiKeys/"):]
	return len(id) >= 16 && bytes.ContainsAny(id, "0123456789")
}

// kwClient: keywarden client credential ids, "kw" and 48 letters/digits.
func kwClient(t *tokenInfo) bool {
	return len(t.b) == 50 && bytes.HasPrefix(t.b, []byte("kw")) && only(t, cAlnum) && bitsSet(t.cls) == 3
}

// ed25519Pair: base64 of seed(32) || public key(32) whose halves agree:
// a Coinbase CDP Ed25519 secret, recognised exactly.
func ed25519Pair(b []byte) bool {
	raw, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return false
	}
	defer clear(raw)
	k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	defer clear(k)
	return bytes.Equal(k[ed25519.SeedSize:], raw[ed25519.SeedSize:])
}

func ed25519Public(b []byte) []byte {
	raw, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil || (len(raw) != ed25519.PrivateKeySize && len(raw) != ed25519.SeedSize) {
		return nil
	}
	defer clear(raw)
	k := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	defer clear(k)
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil
	}
	return der
}

// floor is the entropy floor of a shape: a random string of n characters
// over an alphabet of a symbols has at most min(log2(a), log2(n)) bits per
// character. 72% of that lies below the least entropy of 50,000 random
// samples of every shape here, and above words, counters and repeated
// digits.
func floor(n, alphabet int) float64 {
	return 0.72 * math.Min(math.Log2(float64(alphabet)), math.Log2(float64(n)))
}

// rules in order: the first whose shape, entropy and context match wins.
var rules = []rule{
	// Keys that prove themselves or carry their venue in their shape.
	{id: "coinbase-cdp-ed25519-key", venue: "coinbase", what: "CDP Ed25519 private key", severity: High,
		shape: b64(88, 64), verify: ed25519Pair, public: ed25519Public},
	{id: "coinbase-cdp-key-name", venue: "coinbase", what: "CDP API key name", severity: Medium,
		shape: cdpName},
	{id: "bitget-api-key", venue: "bitget", what: "API key", severity: Medium,
		shape: hasPrefixHex("bg_", 32), minEntropy: 3},
	{id: "keywarden-client-id", what: "keywarden client credential id", severity: Medium,
		shape: kwClient, minEntropy: floor(48, 62)},
	{id: "hyperliquid-private-key", venue: "hyperliquid", what: "wallet or agent private key", severity: High,
		shape: hasPrefixHex("0x", 64), minEntropy: 3.0, venueKW: hlKW,
		credKW: []string{"private", "secret", "priv", "key", "wallet", "signer", "agent"}, notKW: hashyNotKW, keyOnly: true},

	// Binance USD-M before Binance: same key shapes, futures context.
	{id: "binance-usdm-api-secret", venue: "binance-usdm", what: "API secret", severity: High,
		shape: alnum(64), minEntropy: floor(64, 62), venueKW: usdmKW, credKW: secretKW, keyOnly: true},
	{id: "binance-usdm-api-key", venue: "binance-usdm", what: "API key", severity: Medium,
		shape: alnum(64), minEntropy: floor(64, 62), venueKW: usdmKW, credKW: keyKW, keyOnly: true},
	{id: "binance-api-secret", venue: "binance", what: "API secret", severity: High,
		shape: alnum(64), minEntropy: floor(64, 62), venueKW: binanceKW, credKW: secretKW, keyOnly: true},
	{id: "binance-api-key", venue: "binance", what: "API key", severity: Medium,
		shape: alnum(64), minEntropy: floor(64, 62), venueKW: binanceKW, credKW: keyKW, keyOnly: true},
	{id: "binance-credential", venue: "binance", what: "API key or secret", severity: High,
		shape: alnum(64), minEntropy: floor(64, 62), venueKW: binanceKW},

	{id: "kraken-futures-api-secret", venue: "kraken-futures", what: "API secret", severity: High,
		shape: b64(88, 64, 66), minEntropy: floor(88, 64), venueKW: krakenFKW, credKW: anyCredKW, notKW: krakenNotKW, keyOnly: true},
	{id: "kraken-futures-api-key", venue: "kraken-futures", what: "API key", severity: Medium,
		shape: b64(56, 42), minEntropy: floor(56, 64), venueKW: krakenFKW, credKW: anyCredKW, notKW: krakenNotKW, keyOnly: true},
	{id: "kraken-api-secret", venue: "kraken", what: "API secret", severity: High,
		shape: b64(88, 64, 66), minEntropy: floor(88, 64), venueKW: krakenKW, credKW: anyCredKW, notKW: krakenNotKW, keyOnly: true},
	{id: "kraken-api-key", venue: "kraken", what: "API key", severity: Medium,
		shape: b64(56, 42), minEntropy: floor(56, 64), venueKW: krakenKW, credKW: anyCredKW, notKW: krakenNotKW, keyOnly: true},

	{id: "okx-api-secret", venue: "okx", what: "API secret", severity: High,
		shape: hexN(32), minEntropy: 2.7, venueKW: okxKW, credKW: secretKW, keyOnly: true},
	{id: "okx-api-key", venue: "okx", what: "API key", severity: Medium,
		shape: uuid, minEntropy: 2.7, venueKW: okxKW, credKW: keyKW, keyOnly: true},

	{id: "bybit-api-secret", venue: "bybit", what: "API secret", severity: High,
		shape: alnum(36), minEntropy: floor(36, 62), venueKW: bybitKW, credKW: anyCredKW, keyOnly: true},
	{id: "bybit-api-key", venue: "bybit", what: "API key", severity: Medium,
		shape: alnum(18), minEntropy: floor(18, 62), venueKW: bybitKW, credKW: keyKW, keyOnly: true},

	{id: "kucoin-api-secret", venue: "kucoin", what: "API secret", severity: High,
		shape: uuid, minEntropy: 2.7, venueKW: kucoinKW, credKW: secretKW, keyOnly: true},
	{id: "kucoin-api-key", venue: "kucoin", what: "API key", severity: Medium,
		shape: hexN(24), minEntropy: 2.4, venueKW: kucoinKW, credKW: keyKW, keyOnly: true},

	{id: "bitget-api-secret", venue: "bitget", what: "API secret", severity: High,
		shape: hexN(64), minEntropy: 3.0, venueKW: bitgetKW, credKW: anyCredKW, notKW: hashyNotKW, keyOnly: true},

	{id: "gate-api-secret", venue: "gate", what: "API secret", severity: High,
		shape: hexN(64), minEntropy: 3.0, venueKW: gateKW, credKW: anyCredKW, notKW: hashyNotKW, keyOnly: true},
	{id: "gate-api-key", venue: "gate", what: "API key", severity: Medium,
		shape: hexN(32), minEntropy: 2.7, venueKW: gateKW, credKW: keyKW, notKW: hashyNotKW, keyOnly: true},

	{id: "deribit-client-secret", venue: "deribit", what: "client secret", severity: High,
		shape: b64url(43), minEntropy: floor(43, 64), venueKW: deribitKW, credKW: anyCredKW, keyOnly: true},

	{id: "bitmex-api-secret", venue: "bitmex", what: "API secret", severity: High,
		shape: b64url(48), minEntropy: floor(48, 64), venueKW: bitmexKW, credKW: anyCredKW, keyOnly: true},
	{id: "bitmex-api-key", venue: "bitmex", what: "API key", severity: Medium,
		shape: b64url(24), minEntropy: floor(24, 64), venueKW: bitmexKW, credKW: keyKW, keyOnly: true},

	{id: "coinbase-cdp-ed25519-seed", venue: "coinbase", what: "CDP Ed25519 private key seed", severity: High,
		shape: b64(44, 32), minEntropy: floor(44, 64), venueKW: coinbaseKW, credKW: secretKW, public: ed25519Public, keyOnly: true},
	{id: "coinbase-api-secret", venue: "coinbase", what: "legacy API secret", severity: High,
		shape: alnum(32), minEntropy: floor(32, 62), venueKW: coinbaseKW, credKW: secretKW, keyOnly: true},
	{id: "coinbase-api-key", venue: "coinbase", what: "legacy API key", severity: Medium,
		shape: alnum(16), minEntropy: floor(16, 62), venueKW: coinbaseKW, credKW: keyKW, keyOnly: true},

	// Anything assigned to a secret-sounding name that looks random.
	{id: "generic-secret", what: "high-entropy secret", severity: Medium,
		shape: genericShape, minEntropy: 0, credKW: genericKW, notKW: genericNotKW, keyOnly: true,
		verify: genericEntropy},
}

// liveRule reports a token no rule recognised that the matcher knows.
var liveRule = rule{id: "keywarden-live-key", what: "live key material", severity: Critical}

// genericShape: 20 or more characters mixing letters and digits.
func genericShape(t *tokenInfo) bool {
	return len(t.b) >= 20 && t.cls&cDigit != 0 && t.cls&(cLower|cUpper) != 0 && only(t, cB64|cB64URL)
}

// genericEntropy asks a generic secret for randomness: no words a
// made-up value is made of ("client-secret-MARKER", "test"), hex strings
// 3 bits per character and 32 characters, others 72% of the most their
// length allows (as floor does) and at least 3 bits.
func genericEntropy(b []byte) bool {
	t := tokenInfo{b: b}
	for _, c := range b {
		t.cls |= classOf[c]
	}
	if len(b) == 42 && b[0] == '0' && b[1] == 'x' {
		return false // an EVM address: public
	}
	low := bytes.ToLower(b)
	for _, w := range []string{"example", "sample", "dummy", "xxxx", "placeholder", "changeme",
		"secret", "token", "passw", "apikey", "api-key", "api_key", "marker", "test", "canary"} {
		if bytes.Contains(low, []byte(w)) {
			return false
		}
	}
	h := shannon(b)
	if only(&t, cDigit|cLowerHex) || only(&t, cDigit|cUpperHex) {
		return len(b) >= 32 && h >= 3
	}
	return h >= math.Max(3, 0.72*math.Min(6, math.Log2(float64(len(b)))))
}
