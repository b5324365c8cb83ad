package rotation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/hyperliquid"
	"github.com/keywarden/keywarden/internal/store"
)

// Hyperliquid has no API keys to create or delete: a master wallet approves
// agent wallets (approveAgent), and approving an address under a name
// replaces the agent of that name. There is no revoke. HyperliquidVenue
// maps the rotation machine onto that:
//
//	create  -> a fresh agent key whose address was never used (recorded in
//	           the store before anything is sent) is approved by the master
//	           under one of the key's two agent names, the one the current
//	           agent does not hold, so the current agent keeps working
//	           through the grace period
//	verify  -> the new agent signs a noop (accepted only from an approved
//	           signer) and userRole names it an agent of the master
//	delete  -> the old agent's name is given to a fresh address whose key
//	           is discarded at once, which deregisters the old agent; its
//	           address is then checked to be no agent any more
//
// An agent address is never approved twice: what an old agent signed
// could otherwise be replayed. A crash between the approval and the
// rotation's next persisted step leaves an approved agent whose key is
// lost; the resumed create step approves under the same name and so
// replaces it.
type HyperliquidVenue struct {
	HTTP *HTTPVenue
	// Used remembers every agent address ever approved; durable.
	Used hyperliquid.UsedAgents
	// Vault reads the key being rotated (its current agent address).
	Vault interface {
		Credential(ctx context.Context, ex, name string) (*exchange.Credential, error)
	}
	// Exchange and Name are the vault key being rotated.
	Exchange, Name string
}

var _ Venue = (*HyperliquidVenue)(nil)

// VenueFor returns the Venue that rotates the vault key ex/name reached
// through h: a HyperliquidVenue, whose used-agent list lives in st, for
// Hyperliquid; h itself for every other venue.
func VenueFor(h *HTTPVenue, st store.Store, v Vault, ex, name string) Venue {
	if h.Venue.Name != hyperliquid.Name {
		return h
	}
	return &HyperliquidVenue{HTTP: h, Used: StoreUsedAgents{Store: st}, Vault: v, Exchange: ex, Name: name}
}

func (h *HyperliquidVenue) network() hyperliquid.Network {
	if s, ok := h.HTTP.Venue.Signer.(*hyperliquid.Signer); ok {
		return s.Network()
	}
	return hyperliquid.Mainnet
}

// AgentNames are the two agent names the vault key name rotates between
// (at most 16 characters, as Hyperliquid allows): "kw-<name>-a" and
// "kw-<name>-b", or a hash of the name when it is too long.
func AgentNames(name string) [2]string {
	base := "kw-" + name
	if len(base) > 14 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		h := sha256.Sum256([]byte(name))
		base = "kw-" + hex.EncodeToString(h[:5])
	}
	return [2]string{base + "-a", base + "-b"}
}

// masterOf checks signer is a master wallet and returns its address.
func masterOf(signer *exchange.Credential) (eip712.Address, error) {
	k, master, err := hyperliquid.KeyOf(signer)
	if err != nil {
		return eip712.Address{}, err
	}
	addr := k.Address()
	k.Zero()
	if !master {
		return eip712.Address{}, errors.New("approving agents needs the master wallet: rotate with --manager hyperliquid/<master key name>")
	}
	return addr, nil
}

func (h *HyperliquidVenue) agents(ctx context.Context, master eip712.Address) ([]hyperliquid.AgentInfo, error) {
	st, b, err := h.HTTP.do(ctx, hyperliquid.InfoRequest("extraAgents", master), nil)
	if err != nil {
		return nil, err
	}
	return hyperliquid.ParseExtraAgents(st, b)
}

// approve approves a never-used address under name with the master key
// signer and returns the agent's key; the caller must Zero it.
func (h *HyperliquidVenue) approve(ctx context.Context, signer *exchange.Credential, name string) (*eip712.PrivateKey, error) {
	k, req, err := hyperliquid.NewAgent(ctx, h.Used, name, h.network(), h.HTTP.now())
	if err != nil {
		return nil, err
	}
	st, b, err := h.HTTP.do(ctx, req, signer)
	if err == nil {
		err = hyperliquid.ExchangeOK(st, b)
	}
	if err != nil {
		k.Zero()
		return nil, fmt.Errorf("approveAgent %s: %w", name, err)
	}
	return k, nil
}

// CreateKey approves a new agent for the master wallet signer.
func (h *HyperliquidVenue) CreateKey(ctx context.Context, signer *exchange.Credential, _ exchange.KeySpec) (*exchange.Credential, error) {
	master, err := masterOf(signer)
	if err != nil {
		return nil, err
	}
	cur, err := h.Vault.Credential(ctx, h.Exchange, h.Name)
	if err != nil {
		return nil, err
	}
	if cur.Account == "" || strings.EqualFold(cur.APIKey, cur.Account) {
		return nil, fmt.Errorf("%s/%s is a master wallet: only agent wallets are rotated (move funds to rotate a master)", h.Exchange, h.Name)
	}
	if !strings.EqualFold(cur.Account, master.Hex()) {
		return nil, fmt.Errorf("the manager key is not the master of %s/%s", h.Exchange, h.Name)
	}
	listed, err := h.agents(ctx, master)
	if err != nil {
		return nil, err
	}
	names := AgentNames(h.Name)
	name := names[0]
	for _, a := range listed {
		if a.Name == names[0] && strings.EqualFold(a.Address, cur.APIKey) {
			name = names[1] // the current agent holds the first name
		}
	}
	k, err := h.approve(ctx, signer, name)
	if err != nil {
		return nil, err
	}
	defer k.Zero()
	return &exchange.Credential{Kind: exchange.KeyHMAC, APIKey: k.Address().Hex(), Secret: exchange.Secret(k.Hex()), Account: master.Hex()}, nil
}

// Inspect proves key is an approved agent: it signs a noop the venue
// accepts only from an approved signer, and userRole names it an agent of
// its master. An agent trades and reads; it can never move funds.
func (h *HyperliquidVenue) Inspect(ctx context.Context, key *exchange.Credential) (exchange.KeyPosture, error) {
	var p exchange.KeyPosture
	st, b, err := h.HTTP.do(ctx, hyperliquid.NoopRequest(h.HTTP.now()), key)
	if err == nil {
		err = hyperliquid.ExchangeOK(st, b)
	}
	if err != nil {
		return p, fmt.Errorf("signed noop: %w", err)
	}
	addr, err := eip712.ParseAddress(key.APIKey)
	if err != nil {
		return p, err
	}
	role, master, err := h.role(ctx, addr)
	if err != nil {
		return p, err
	}
	if role != "agent" || !strings.EqualFold(master, key.Account) {
		return p, fmt.Errorf("userRole of %s is %q of %q, want an agent of %s", addr.Hex(), role, master, key.Account)
	}
	return exchange.KeyPosture{Permissions: []string{"agent"}, CanRead: true, CanTrade: true}, nil
}

func (h *HyperliquidVenue) role(ctx context.Context, addr eip712.Address) (role, master string, err error) {
	st, b, err := h.HTTP.do(ctx, hyperliquid.InfoRequest("userRole", addr), nil)
	if err != nil {
		return "", "", err
	}
	return hyperliquid.ParseUserRole(st, b)
}

// DeleteKey deregisters the agent keyID: its name is approved for a fresh
// address whose key is dropped at once. It then checks keyID is no agent
// any more (an unnamed agent, which extraAgents does not list, cannot be
// replaced this way: the error says so).
func (h *HyperliquidVenue) DeleteKey(ctx context.Context, signer *exchange.Credential, keyID string, _ exchange.KeySpec) error {
	master, err := masterOf(signer)
	if err != nil {
		return err
	}
	old, err := eip712.ParseAddress(keyID)
	if err != nil {
		return fmt.Errorf("old agent address: %w", err)
	}
	listed, err := h.agents(ctx, master)
	if err != nil {
		return err
	}
	for _, a := range listed {
		if strings.EqualFold(a.Address, old.Hex()) {
			k, err := h.approve(ctx, signer, a.Name)
			if err != nil {
				return err
			}
			k.Zero()
		}
	}
	role, _, err := h.role(ctx, old)
	if err != nil {
		return err
	}
	if role == "agent" {
		return fmt.Errorf("old agent %s is still approved and not listed by name; replace it by hand (approveAgent under its name)", old.Hex())
	}
	return nil
}

// StoreUsedAgents is hyperliquid.UsedAgents kept in the store, one record
// per address, so no agent address is approved again after a restart or
// from another replica. Addresses are public; the records hold no secret.
type StoreUsedAgents struct{ Store store.Store }

var _ hyperliquid.UsedAgents = StoreUsedAgents{}

const usedAgentPrefix = "hyperliquid-agents/used/"

// Used reports whether addr was recorded.
func (s StoreUsedAgents) Used(ctx context.Context, addr eip712.Address) (bool, error) {
	_, err := s.Store.Get(ctx, usedAgentPrefix+addr.Hex())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("used agents: %w", err)
}

// Add records addr; it is durable when Add returns (the store's Put).
func (s StoreUsedAgents) Add(ctx context.Context, addr eip712.Address) error {
	if err := s.Store.Put(ctx, usedAgentPrefix+addr.Hex(), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("used agents: %w", err)
	}
	return nil
}

// UsedAgentAddresses lists the recorded addresses.
func (s StoreUsedAgents) UsedAgentAddresses(ctx context.Context) ([]string, error) {
	keys, err := s.Store.List(ctx, usedAgentPrefix)
	if err != nil {
		return nil, fmt.Errorf("used agents: %w", err)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, strings.TrimPrefix(k, usedAgentPrefix))
	}
	return out, nil
}
