// Package hyperliquid implements keywarden's Hyperliquid venue. Hyperliquid
// has no API key or secret: every write to POST /exchange is an EIP-712
// secp256k1 signature by an EVM wallet (spec/exchanges.md §13). Trading
// ("L1") actions are signed over a phantom agent whose connectionId is the
// Keccak-256 of the MessagePack-encoded action, the nonce, the vault address
// and expiresAfter; fund movements and admin actions (usdSend, withdraw3,
// approveAgent, ...) are "user-signed" typed transactions that only the
// master wallet may sign.
//
// Through keywarden a bot signs with its client credential's key (see
// ClientPrivateKey), sends the request to /hyperliquid/<client id>/exchange,
// and keywarden recovers the signer, matches it to the credential, describes
// and checks the action, then re-signs it with the vault's key (an approved
// agent wallet for trading, the master wallet where a user-signed action is
// allowed) under a nonce keywarden owns per signer. POST /info is public.
//
// The package also rotates agent wallets (approveAgent with a fresh address,
// never one used before) and provides a simulator that recovers the signer
// of every request and checks it against the registered wallets and agents.
//
// Security: this package decides what is signed and what is accepted as
// authentic. Changes here need a second security review.
package hyperliquid

import (
	"net/url"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Upstream hosts.
const (
	DefaultUpstream = "https://api.hyperliquid.xyz"
	TestnetUpstream = "https://api.hyperliquid-testnet.xyz"
)

// Name is the venue's name in keywarden.
const Name = "hyperliquid"

// New returns the Hyperliquid venue whose requests go to upstream
// (DefaultUpstream when nil). Signatures are for testnet when upstream is
// the testnet host, for mainnet otherwise (simulators included).
func New(upstream *url.URL) exchange.Venue {
	if upstream == nil {
		upstream, _ = url.Parse(DefaultUpstream)
	}
	net := Mainnet
	if u, _ := url.Parse(TestnetUpstream); upstream.Host == u.Host {
		net = Testnet
	}
	return NewNetwork(upstream, net)
}

// NewNetwork returns the venue for an explicit network.
func NewNetwork(upstream *url.URL, net Network) exchange.Venue {
	return exchange.Venue{
		Name:      Name,
		Upstream:  upstream,
		Signer:    NewSigner(net),
		Verifier:  newVerifier(net),
		Describer: describer{},
		Errors:    errorWriter{},
		// The vault stores a Hyperliquid key as its raw hex private key
		// (the vault's "hmac" kind holds raw secret bytes); APIKey is the
		// wallet's address and Account the master account's address.
		KeyKinds: []exchange.KeyKind{exchange.KeyHMAC},
	}
}

// Network is mainnet or testnet; signatures differ between them.
type Network int

// Networks.
const (
	Mainnet Network = iota
	Testnet
)

// source is the phantom agent's source for L1 actions.
func (n Network) source() string {
	if n == Testnet {
		return "b"
	}
	return "a"
}

// Chain is the hyperliquidChain value of user-signed actions.
func (n Network) Chain() string {
	if n == Testnet {
		return "Testnet"
	}
	return "Mainnet"
}

var (
	_ exchange.Signer      = (*Signer)(nil)
	_ exchange.Verifier    = (*verifier)(nil)
	_ exchange.Describer   = describer{}
	_ exchange.ErrorWriter = errorWriter{}
)
