package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
	"github.com/keywarden/keywarden/internal/gateway"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/server"
	"github.com/keywarden/keywarden/internal/venues"
)

// GatewayConfig is the [gateway] section.
type GatewayConfig struct {
	// Listen is the gateway's address (default 127.0.0.1:8443).
	Listen string `toml:"listen"`
	// TLSCert and TLSKey name PEM files; without them the gateway uses a
	// certificate from keywarden's local CA (see `keywarden tls ca`).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// ClientCA names a PEM file of CAs for TLS client certificates. With it
	// the gateway asks bots for a certificate, and credentials issued with
	// --client-cert accept requests only over a connection that presents it.
	ClientCA string `toml:"client_ca"`
	// Hosts are the names and addresses on the local CA's certificate.
	Hosts []string `toml:"hosts"`
	// Plaintext serves plain HTTP; allowed on loopback addresses only,
	// unless InsecurePlaintext is also set.
	Plaintext         bool `toml:"plaintext"`
	InsecurePlaintext bool `toml:"insecure_plaintext"`
	// TrustedProxies may set X-Forwarded-For (CIDRs or addresses).
	TrustedProxies []string `toml:"trusted_proxies"`
	// UpstreamTimeout bounds one call to a venue (default 10s).
	UpstreamTimeout string `toml:"upstream_timeout"`
	// MaxBody, MaxHeaderBytes and MaxURI cap a request's body, header
	// section and target in bytes (defaults 65536, 16384, 8192); larger
	// ones answer 413, 431 and 414, and are never forwarded.
	MaxBody        int64 `toml:"max_body"`
	MaxHeaderBytes int   `toml:"max_header_bytes"`
	MaxURI         int   `toml:"max_uri"`
	// IdempotencyWindow is how long a new order's client order id is
	// refused (409) when sent again with the same key (default 24h; "off"
	// turns the check off).
	IdempotencyWindow string `toml:"idempotency_window"`
	// AuditDir holds the audit log (default <data_dir>/audit).
	AuditDir string `toml:"audit_dir"`
	// AuditHashFields are record fields stored as keyed HMACs instead of
	// in clear: client, key, source_ip, address.
	AuditHashFields []string `toml:"audit_hash_fields"`
	// AuditSyslog copies every audit record to a syslog server as RFC 5424
	// messages: "tcp://host:514" or "udp://host:514".
	AuditSyslog string `toml:"audit_syslog"`
	// AuditHTTP copies every audit record, as JSON Lines, to a SIEM's HTTP
	// collector; AuditHTTPTokenFile names a file (0600) holding a bearer
	// token for it.
	AuditHTTP          string `toml:"audit_http"`
	AuditHTTPTokenFile string `toml:"audit_http_token_file"`
	// AuditWitnessFile is the live witness (see docs/audit.md): serve
	// checks the log against it at start and appends each new signed
	// checkpoint; two roots for one tree size stop serve (audit_fork).
	AuditWitnessFile string `toml:"audit_witness_file"`
}

// VenueConfig is one [[venue]] table. With no [[venue]] tables, every known
// venue is served at its real host.
type VenueConfig struct {
	Name string `toml:"name"`
	// Upstream overrides the venue's host: https, or http to loopback
	// (simulators) only.
	Upstream string `toml:"upstream"`
	// Testnet selects the venue's testnet or demo host.
	Testnet bool `toml:"testnet"`
	// PublicCacheTTL caches public GET answers ("1s"; default off).
	PublicCacheTTL string `toml:"public_cache_ttl"`
}

func (g *GatewayConfig) withDefaults(dataDir string) GatewayConfig {
	c := *g
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if len(c.Hosts) == 0 {
		c.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if c.UpstreamTimeout == "" {
		c.UpstreamTimeout = "10s"
	}
	if c.AuditDir == "" {
		c.AuditDir = filepath.Join(dataDir, "audit")
	}
	return c
}

// validate checks the gateway, venue and policy sections.
func validateGateway(c *Config) error {
	var errs []error
	g := c.Gateway.withDefaults(c.DataDir)
	host, _, err := net.SplitHostPort(g.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("gateway listen %q: %w", g.Listen, err))
	}
	if g.Plaintext && !g.InsecurePlaintext && !isLoopbackHost(host) {
		errs = append(errs, fmt.Errorf("gateway listen %q: plain HTTP is allowed only on a loopback address (set insecure_plaintext to override)", g.Listen))
	}
	if g.ClientCA != "" && g.Plaintext {
		errs = append(errs, errors.New("gateway client_ca needs TLS; it cannot be used with plaintext"))
	}
	if (g.TLSCert == "") != (g.TLSKey == "") {
		errs = append(errs, errors.New("gateway tls_cert and tls_key go together"))
	}
	if _, err := time.ParseDuration(g.UpstreamTimeout); err != nil {
		errs = append(errs, fmt.Errorf("gateway upstream_timeout: %w", err))
	}
	if _, err := parsePrefixes(g.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("gateway trusted_proxies: %w", err))
	}
	if _, err := g.limits(); err != nil {
		errs = append(errs, err)
	}
	if _, err := auditSinks(g); err != nil {
		errs = append(errs, err)
	}
	if err := checkWitnessPlace(g); err != nil {
		errs = append(errs, err)
	}
	if _, err := routes(c.Venues); err != nil {
		errs = append(errs, err)
	}
	if _, err := policy.CompileAll(c.Policies); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// routes turns [[venue]] tables into server routes; none means all venues.
func routes(vcs []VenueConfig) ([]server.Route, error) {
	if len(vcs) == 0 {
		var out []server.Route
		for _, d := range venues.Known() {
			out = append(out, server.Route{Def: d})
		}
		return out, nil
	}
	var out []server.Route
	seen := map[string]bool{}
	for _, vc := range vcs {
		d, err := venues.ByName(vc.Name)
		if err != nil {
			return nil, fmt.Errorf("venue: %w", err)
		}
		if seen[vc.Name] {
			return nil, fmt.Errorf("venue %s is configured twice", vc.Name)
		}
		seen[vc.Name] = true
		r := server.Route{Def: d}
		raw := vc.Upstream
		if raw == "" && vc.Testnet {
			if d.Testnet == "" {
				return nil, fmt.Errorf("venue %s has no testnet host", vc.Name)
			}
			raw = d.Testnet
		}
		if raw != "" {
			u, err := url.Parse(raw)
			if err != nil {
				return nil, fmt.Errorf("venue %s upstream: %w", vc.Name, err)
			}
			if err := gateway.CheckUpstream(u); err != nil {
				return nil, fmt.Errorf("venue %s: %w", vc.Name, err)
			}
			r.Upstream = u
		}
		if vc.PublicCacheTTL != "" {
			ttl, err := time.ParseDuration(vc.PublicCacheTTL)
			if err != nil || ttl < 0 {
				return nil, fmt.Errorf("venue %s public_cache_ttl %q: want a duration like 1s", vc.Name, vc.PublicCacheTTL)
			}
			r.PublicCacheTTL = ttl
		}
		out = append(out, r)
	}
	return out, nil
}

// auditSinks builds the configured audit destinations.
func auditSinks(g GatewayConfig) ([]server.NamedSink, error) {
	var out []server.NamedSink
	if g.AuditSyslog != "" {
		u, err := url.Parse(g.AuditSyslog)
		if err != nil || (u.Scheme != "tcp" && u.Scheme != "udp") || u.Host == "" {
			return nil, fmt.Errorf("gateway audit_syslog %q: want tcp://host:port or udp://host:port", g.AuditSyslog)
		}
		sl, err := audit.NewSyslog(audit.SyslogOptions{Network: u.Scheme, Addr: u.Host, Timeout: 5 * time.Second})
		if err != nil {
			return nil, err
		}
		out = append(out, server.NamedSink{Name: "syslog", Sink: sl})
	}
	if g.AuditHTTP != "" {
		o := audit.HTTPSinkOptions{URL: g.AuditHTTP}
		if g.AuditHTTPTokenFile != "" {
			tok, err := readPassphraseFile(g.AuditHTTPTokenFile)
			if err != nil {
				return nil, fmt.Errorf("gateway audit_http_token_file: %w", err)
			}
			o.Header = http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(tok))}}
			clear(tok)
		}
		hs, err := audit.NewHTTPSink(o)
		if err != nil {
			return nil, err
		}
		out = append(out, server.NamedSink{Name: "http", Sink: hs})
	}
	return out, nil
}
