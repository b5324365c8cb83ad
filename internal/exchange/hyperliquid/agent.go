package hyperliquid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/keywarden/keywarden/internal/eip712"
	"github.com/keywarden/keywarden/internal/exchange"
)

// UsedAgents remembers every agent address keywarden ever approved, so no
// address is approved twice: an old agent's signatures and nonces could be
// replayed if its address came back (spec §13d). Implementations must be
// durable before Add returns.
type UsedAgents interface {
	Used(ctx context.Context, addr eip712.Address) (bool, error)
	Add(ctx context.Context, addr eip712.Address) error
}

// MemoryUsedAgents is a UsedAgents in memory, for tests and one-shot tools.
// It is safe for concurrent use.
type MemoryUsedAgents struct {
	mu   sync.Mutex
	seen map[eip712.Address]bool
}

// Used reports whether addr was added.
func (m *MemoryUsedAgents) Used(_ context.Context, addr eip712.Address) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[addr], nil
}

// Add records addr.
func (m *MemoryUsedAgents) Add(_ context.Context, addr eip712.Address) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[eip712.Address]bool{}
	}
	m.seen[addr] = true
	return nil
}

// NewAgent is the first step of rotating an agent wallet: it generates a
// key whose address was never used, records the address as used (before
// anything leaves keywarden), and returns the key with an unsigned
// approveAgent request for name. The master key signs the request through
// the Signer; once Hyperliquid accepts it, the new key replaces the agent of
// the same name and goes into the vault. The caller must Zero the key.
func NewAgent(ctx context.Context, used UsedAgents, name string, net Network, now time.Time) (*eip712.PrivateKey, *exchange.Request, error) {
	for range 4 {
		k, err := eip712.GenerateKey()
		if err != nil {
			return nil, nil, err
		}
		seen, err := used.Used(ctx, k.Address())
		if err != nil {
			k.Zero()
			return nil, nil, fmt.Errorf("new agent: %w", err)
		}
		if seen {
			k.Zero()
			continue
		}
		if err := used.Add(ctx, k.Address()); err != nil {
			k.Zero()
			return nil, nil, fmt.Errorf("new agent: %w", err)
		}
		req, err := ApproveAgentRequest(k.Address(), name, net, now)
		if err != nil {
			k.Zero()
			return nil, nil, err
		}
		return k, req, nil
	}
	return nil, nil, errors.New("new agent: could not draw an unused address")
}

// ApproveAgentRequest builds the unsigned POST /exchange approveAgent for
// agent under name; the Signer sets its nonce and master signature.
func ApproveAgentRequest(agent eip712.Address, name string, net Network, now time.Time) (*exchange.Request, error) {
	act := &eip712.Object{}
	act.Set("type", "approveAgent")
	act.Set("signatureChainId", "0x66eee")
	act.Set("hyperliquidChain", net.Chain())
	act.Set("agentAddress", agent.Hex())
	act.Set("agentName", name)
	n := uint64(now.UnixMilli())
	act.Set("nonce", jsonUint(n))
	env := &envelope{Action: act, Type: "approveAgent", Nonce: n, HasVault: true}
	body, err := env.encode()
	if err != nil {
		return nil, err
	}
	return &exchange.Request{Method: "POST", Path: "/exchange", Header: map[string][]string{"Content-Type": {"application/json"}}, Body: body}, nil
}

// SignBody signs an unsigned /exchange body ({"action":…,"nonce":…[,
// "vaultAddress":…][,"expiresAfter":…]}) with key for net, as a wallet or the
// official SDK would, and returns the body with its signature. Bots written
// in Go use it with their client key (ClientPrivateKey); tests use it too.
func SignBody(key *eip712.PrivateKey, body []byte, net Network) ([]byte, error) {
	env, err := parseEnvelope(body)
	if err != nil {
		return nil, err
	}
	d, err := env.digest(net)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(d)
	if err != nil {
		return nil, err
	}
	env.Sig = &sig
	return env.encode()
}

func jsonUint(n uint64) any { return jsonNumber(strconv.FormatUint(n, 10)) }

// Network is the network the Signer signs for.
func (s *Signer) Network() Network { return s.net }

// AgentInfo is one named agent of a master account, as POST /info
// {"type":"extraAgents"} lists it.
type AgentInfo struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	ValidUntil int64  `json:"validUntil"`
}

// InfoRequest builds an unsigned POST /info of type typ about user.
func InfoRequest(typ string, user eip712.Address) *exchange.Request {
	body := `{"type":"` + typ + `","user":"` + user.Hex() + `"}`
	return &exchange.Request{Method: "POST", Path: "/info", Header: map[string][]string{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

// ParseExtraAgents reads the answer to an extraAgents query.
func ParseExtraAgents(status int, body []byte) ([]AgentInfo, error) {
	if status != 200 {
		return nil, fmt.Errorf("extraAgents: status %d", status)
	}
	var out []AgentInfo
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("extraAgents: %w", err)
	}
	return out, nil
}

// ParseUserRole reads the answer to a userRole query: the role ("user",
// "agent", "vault", "subAccount", "missing") and, for an agent, its master.
func ParseUserRole(status int, body []byte) (role, master string, err error) {
	if status != 200 {
		return "", "", fmt.Errorf("userRole: status %d", status)
	}
	var r struct {
		Role string `json:"role"`
		Data struct {
			User string `json:"user"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Role == "" {
		return "", "", errors.New("userRole: malformed answer")
	}
	return r.Role, r.Data.User, nil
}

// NoopRequest builds the unsigned POST /exchange {"type":"noop"}: an L1
// action that does nothing but burn a nonce, so a signed noop proves the
// venue accepts a key's signatures. The Signer sets its nonce and signature.
func NoopRequest(now time.Time) *exchange.Request {
	body := fmt.Appendf(nil, `{"action":{"type":"noop"},"nonce":%d,"vaultAddress":null}`, now.UnixMilli())
	return &exchange.Request{Method: "POST", Path: "/exchange", Header: map[string][]string{"Content-Type": {"application/json"}}, Body: body}
}

// ExchangeOK reads an /exchange answer: nil for {"status":"ok"}, else an
// error with the venue's message.
func ExchangeOK(status int, body []byte) error {
	var r struct {
		Status   string          `json:"status"`
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(body, &r); err != nil || status != 200 {
		return fmt.Errorf("status %d: %s", status, exchange.SafeName(string(body)))
	}
	if r.Status != "ok" {
		var msg string
		_ = json.Unmarshal(r.Response, &msg)
		return fmt.Errorf("refused: %s", exchange.SafeName(msg))
	}
	return nil
}

// RecoverSigner returns the address that signed a signed /exchange body for
// net, as Hyperliquid recovers it.
func RecoverSigner(body []byte, net Network) (eip712.Address, error) {
	env, err := parseEnvelope(body)
	if err != nil {
		return eip712.Address{}, err
	}
	if env.Sig == nil {
		return eip712.Address{}, errors.New("signature missing")
	}
	d, err := env.digest(net)
	if err != nil {
		return eip712.Address{}, err
	}
	return eip712.Recover(d, *env.Sig)
}
