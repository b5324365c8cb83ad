package lint

// Allow exempts the findings of one rule in one function of one file
// (repository-relative path; Func as in Finding), with the reason.
type Allow struct {
	Rule, File, Func, Reason string
}

// allowedBy returns the index of the Allowed entry covering f, or -1.
func allowedBy(f Finding) int {
	for i, a := range Allowed {
		if a.Rule == f.Rule && a.File == f.Pos.Filename && a.Func == f.Func {
			return i
		}
	}
	return -1
}

// Reasons shared by several entries.
const (
	showOnce   = "the newly issued client secret is shown to the operator once, by design; the output is a string"
	simulator  = "venue simulator (test support compiled into the package): it verifies signatures with the account's key"
	header     = "the venue takes the passphrase as an HTTP header value, which is a string"
	webhook    = "the alert channel's credential must be sent as part of a URL, header or form value, which are strings"
	benchKey   = "load generator: the throwaway simulator key is written into the bench configuration"
	vaultToken = "VAULT_TOKEN, HashiCorp Vault's own convention, as a fallback when no token file is configured (the documented way)"
	public     = "compares public values (audit chain or checkpoint hashes and signatures anyone may verify); no secret to time"
)

// Allowed lists the findings in existing code that are deliberate.
var Allowed = []Allow{
	{"H4-string", "cmd/keywarden/demo.go", "runDemo", showOnce},
	{"H4-string", "cmd/keywarden/serve_control.go", "shown", showOnce},
	{"H4-string", "internal/admin/handlers.go", "issued", showOnce},
	{"H4-string", "internal/client/unwrap_http.go", "UnwrapHandler", "a wrapped credential is handed to its bot once, as the JSON strings of the unwrap answer"},
	{"H4-string", "cmd/keywarden/simulate.go", "newSimulateCmd", "`keywarden simulate` prints the simulator's own throwaway key so a bot can be pointed at it"},
	{"H4-string", "internal/bench/bench.go", "runPaths", benchKey},
	{"H4-string", "internal/bench/bench.go", "runClients", benchKey},
	{"H4-string", "internal/bench/gateway.go", "ServeGateway", benchKey},
	{"H4-string", "internal/exchange/bitmex/sim.go", "Simulator.execute", simulator},
	{"H4-string", "internal/exchange/deribit/sim.go", "Simulator.execute", simulator},
	{"H4-string", "internal/exchange/kraken/sim.go", "Simulator.authenticate", simulator},
	{"H4-string", "internal/exchange/krakenfutures/sim.go", "Simulator.authenticate", simulator},
	{"H4-string", "internal/exchange/kucoin/sim.go", "Simulator.authenticate", simulator},
	{"H4-string", "internal/exchange/okx/auth.go", "signer.Sign", header},
	{"H4-string", "internal/exchange/okx/ws.go", "WSAPI.Sign", "OKX's WebSocket login carries the passphrase as a JSON string field"},
	{"H4-string", "internal/exchange/bitget/auth.go", "signer.Sign", header},
	{"H4-string", "internal/exchange/bitget/keys.go", "keyManager.DeleteKeyRequest", "Bitget's key-management call carries the passphrase as a JSON string field"},
	{"H4-string", "internal/exchange/kucoin/kucoin.go", "keyManager.DeleteKeyRequest", "KuCoin's key-management call carries the passphrase as a JSON string field"},
	{"H4-string", "internal/exchange/hyperliquid/sign.go", "KeyOf", "the hex private key is parsed once into the signing key (eip712.ParsePrivateKey takes a string)"},
	{"H4-string", "internal/notify/email.go", "Email.Notify", webhook},
	{"H4-string", "internal/notify/http.go", "Slack.Notify", webhook},
	{"H4-string", "internal/notify/http.go", "PagerDuty.Notify", webhook},
	{"H4-string", "internal/notify/http.go", "Telegram.Notify", webhook},
	{"H4-env", "cmd/keywarden/seal.go", "openTransit", vaultToken},
	{"H4-env", "cmd/keywarden/key_import.go", "newKeyImportCmd", vaultToken},
	{"H4-env", "cmd/keywarden/config.go", "Config.applyEnv", "KEYWARDEN_PASSPHRASE_KEYRING is a switch (1 or true) to read the passphrase from the desktop keyring, not a secret"},
	{"H5-compare", "internal/audit/search.go", "Filter.matchValue", "an operator's search: the HMAC of the searched value is compared with stored audit fields the searcher can read anyway"},
	{"H5-compare", "internal/audit/segment.go", "chain.check", public},
	{"H5-compare", "internal/audit/tree.go", "verifyNoteSig", public},
	{"H5-compare", "internal/audit/tree.go", "InclusionProof.Verify", public},
	{"H5-compare", "internal/audit/verify.go", "verify", public},
	{"H5-compare", "internal/dashboard/audit.go", "Handler.auditRecord", public},
	{"H5-compare", "internal/seal/transit/transit.go", "Seal.refreshToken", "checks whether another request already replaced the refused token (both values are ours), not a caller's credential"},
}
