package posture

import (
	"fmt"
	"slices"
	"strings"
)

// Purpose is what a key is for.
type Purpose string

// Purposes of a key, from least to most dangerous.
const (
	PurposeReadonly Purpose = "readonly"
	PurposeTrading  Purpose = "trading"
	PurposeWithdraw Purpose = "withdraw"
)

// KeyPlan is least-privilege guidance for creating a key at a venue: the
// permission boxes to tick and leave clear, and how to restrict it by IP.
type KeyPlan struct {
	Exchange string   `json:"exchange"`
	Purpose  Purpose  `json:"purpose"`
	Enable   []string `json:"enable"`
	Disable  []string `json:"disable"`
	IP       string   `json:"ip"`
	// Rotation says whether keywarden can rotate the key through the
	// venue's API ("automated") or needs the operator ("guided").
	Rotation string   `json:"rotation"`
	Notes    []string `json:"notes,omitempty"`
}

// venuePlan is one venue's permission names by purpose.
type venuePlan struct {
	read, trade, withdraw []string // boxes each purpose adds
	never                 []string // boxes no keywarden key needs
	ip                    string
	automated             bool
	notes                 []string
}

func venuePlans(exchange string) (venuePlan, bool) {
	switch exchange {
	case "binance":
		return venuePlan{
			read: []string{"Enable Reading"}, trade: []string{"Enable Spot & Margin Trading", "Enable Futures"},
			withdraw:  []string{"Enable Withdrawals"},
			never:     []string{"Enable Margin Loan, Repay & Transfer", "Enable Universal Transfer", "Permits Universal Transfer", "Enable Symbol Whitelist changes"},
			ip:        "Restrict access to trusted IPs only: the gateway's egress addresses (without it Binance removes trading permission after 30 days and never grants withdrawals)",
			automated: true,
			notes:     []string{"automated rotation works for sub-account keys only, from the master account"},
		}, true
	case "coinbase":
		return venuePlan{
			read: []string{"View"}, trade: []string{"Trade"}, withdraw: []string{"Transfer"},
			ip:    "IP allowlist in the CDP portal: the gateway's egress addresses",
			notes: []string{"create the key in the CDP portal with the ECDSA or Ed25519 signature algorithm"},
		}, true
	case "kraken":
		return venuePlan{
			read:     []string{"Query Funds", "Query Open Orders & Trades", "Query Closed Orders & Trades", "Query Ledger Entries"},
			trade:    []string{"Create & Modify Orders", "Cancel & Close Orders"},
			withdraw: []string{"Withdraw Funds"},
			never:    []string{"Deposit Funds", "Export Data", "Access WebSockets API (unless the bot uses it)"},
			ip:       "IP Whitelisting: the gateway's egress addresses",
			notes:    []string{"withdrawals go only to address names registered in the Kraken UI"},
		}, true
	case "kraken-futures":
		return venuePlan{
			read: []string{"General: Read Only"}, trade: []string{"General: Full Access"}, withdraw: []string{"Withdrawal: Full Access"},
			ip: "IP whitelist: the gateway's egress addresses",
		}, true
	case "okx":
		return venuePlan{
			read: []string{"Read"}, trade: []string{"Trade"}, withdraw: []string{"Withdraw"},
			ip:        "IP addresses: the gateway's egress addresses (keys without an IP expire after 14 days of inactivity)",
			automated: true,
			notes:     []string{"automated rotation works for sub-account keys, which cannot be granted withdraw"},
		}, true
	case "bybit":
		return venuePlan{
			read: []string{"Read-Only"}, trade: []string{"Read-Write", "Orders", "Positions", "Spot Trade"},
			withdraw:  []string{"Wallet: Withdrawal"},
			never:     []string{"Wallet: Account Transfer", "Wallet: Subaccount Transfer", "Exchange: Convert"},
			ip:        "Only IPs with permissions granted are allowed to access the OpenAPI: the gateway's egress addresses (keys without an IP expire after 3 months)",
			automated: true,
		}, true
	case "kucoin":
		return venuePlan{
			read: []string{"General"}, trade: []string{"Spot Trading", "Futures Trading"}, withdraw: []string{"Withdrawal"},
			never:     []string{"Margin Trading (unless needed)", "Transfer"},
			ip:        "IP Restriction: the gateway's egress addresses (required for withdraw)",
			automated: true,
			notes:     []string{"automated rotation works for sub-account keys"},
		}, true
	case "bitget":
		return venuePlan{
			read: []string{"Read-only"}, trade: []string{"Spot trade", "Futures: Orders", "Futures: Holdings"},
			withdraw:  []string{"Wallet: Withdraw"},
			never:     []string{"Wallet: Transfer", "Sub-account"},
			ip:        "Link IP address: the gateway's egress addresses",
			automated: true,
			notes:     []string{"automated rotation works for virtual sub-account keys"},
		}, true
	case "gate":
		return venuePlan{
			read: []string{"Spot/Margin: Read Only", "Perpetual: Read Only", "Wallet: Read Only"}, trade: []string{"Spot/Margin: Read and Write", "Perpetual: Read and Write"},
			withdraw:  []string{"Withdrawal: Read and Write"},
			never:     []string{"Wallet: Read and Write", "Earn", "Loan", "Copy Trading"},
			ip:        "IP whitelist (up to 20 IPv4): the gateway's egress addresses",
			automated: true,
			notes:     []string{"automated rotation works for sub-account keys, which cannot withdraw", "optionally restrict the key to the currency pairs the bot trades"},
		}, true
	case "hyperliquid":
		return venuePlan{
			read:     []string{"no key: account state is public, read by address"},
			trade:    []string{"Generate an API wallet (agent) under API in the Hyperliquid app and authorize it from the master account"},
			withdraw: []string{"the master account's own signature (API wallets cannot withdraw)"},
			never:    []string{"the master account's private key for trading"},
			ip:       "no IP allowlist at Hyperliquid: restrict who calls the gateway instead (policy source_ips)",
			notes:    []string{"an API wallet stops working when its validity period ends: authorize a new one before then"},
		}, true
	case "deribit":
		return venuePlan{
			read: []string{"account:read", "trade:read", "wallet:read"}, trade: []string{"trade:read_write"},
			withdraw:  []string{"wallet:read_write"},
			never:     []string{"account:read_write", "block_trade:read_write", "custody"},
			ip:        "IP whitelist on the key: the gateway's egress addresses",
			automated: true,
		}, true
	case "bitmex":
		return venuePlan{
			read: []string{"(no box: every key can read)"}, trade: []string{"Order", "Order Cancel"}, withdraw: []string{"Withdraw"},
			ip: "CIDR: the gateway's egress addresses as /32",
		}, true
	}
	return venuePlan{}, false
}

// Plan returns least-privilege guidance for a key at exchange for purpose.
func Plan(exchange string, purpose Purpose) (KeyPlan, error) {
	vp, ok := venuePlans(exchange)
	if !ok {
		return KeyPlan{}, fmt.Errorf("plan: no key plan for exchange %q", exchange)
	}
	kp := KeyPlan{Exchange: exchange, Purpose: purpose, IP: vp.ip, Rotation: "guided", Notes: vp.notes}
	if vp.automated {
		kp.Rotation = "automated"
	}
	switch purpose {
	case PurposeReadonly:
		kp.Enable = vp.read
		kp.Disable = slices.Concat(vp.trade, vp.withdraw, vp.never)
	case PurposeTrading:
		kp.Enable = slices.Concat(vp.read, vp.trade)
		kp.Disable = slices.Concat(vp.withdraw, vp.never)
	case PurposeWithdraw:
		kp.Enable = slices.Concat(vp.read, vp.withdraw)
		kp.Disable = slices.Concat(vp.trade, vp.never)
		kp.Notes = append(slices.Clone(kp.Notes), "register withdrawal addresses in the venue's address book and keep a separate key for trading")
	default:
		return KeyPlan{}, fmt.Errorf("plan: unknown purpose %q (want readonly, trading or withdraw)", purpose)
	}
	return kp, nil
}

// Text renders the plan for a terminal.
func (kp KeyPlan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Key plan for %s, purpose %s\n\nTick:\n", kp.Exchange, kp.Purpose)
	for _, p := range kp.Enable {
		fmt.Fprintf(&b, "  [x] %s\n", p)
	}
	b.WriteString("\nLeave clear:\n")
	for _, p := range kp.Disable {
		fmt.Fprintf(&b, "  [ ] %s\n", p)
	}
	fmt.Fprintf(&b, "\nIP allowlist: %s\nRotation: %s\n", kp.IP, kp.Rotation)
	for _, n := range kp.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	return b.String()
}
