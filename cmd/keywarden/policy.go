package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/client"
	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/policy"
	"github.com/keywarden/keywarden/internal/store/sqlite"
	"github.com/keywarden/keywarden/internal/venues"
)

func newPolicyCmd(a *app) *cobra.Command {
	cmd := group("policy", "Validate policies and explain decisions")
	cmd.AddCommand(newPolicyCheckCmd(a), newPolicyExplainCmd(a))
	return cmd
}

func newPolicyCheckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate the policies in FILE (a TOML file of [policy.NAME] tables), or in the configuration",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			if len(args) == 1 {
				ps, err := policy.LoadFile(args[0])
				if err != nil {
					return err
				}
				for n := range ps {
					names = append(names, n)
				}
			} else {
				ps, err := policy.CompileAll(a.cfg.Policies)
				if err != nil {
					return err
				}
				for n := range ps {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			fmt.Fprintf(a.stdout, "%d policies OK: %s\n", len(names), strings.Join(names, ", "))
			return nil
		},
	}
}

func newPolicyExplainCmd(a *app) *cobra.Command {
	var clientID, reqFile, from string
	var prices []string
	cmd := &cobra.Command{
		Use:   "explain --client ID --request REQ.http",
		Short: "Show which rules allow or deny a recorded request (dry run)",
		Long: `explain reads a recorded HTTP request (as sent to keywarden: request line with
the /{venue}/ path, headers, blank line, body), describes it as the gateway
would, and evaluates every rule of the client credential's policy against it.
Nothing is forwarded and no budget is reserved. The signature is not checked.

Reference prices for market orders and price bands: --price BTCUSDT=50000.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(reqFile)
			if err != nil {
				return err
			}
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(normalizeHTTP(raw))))
			if err != nil {
				return fmt.Errorf("request file: %w", err)
			}
			body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
			name, rest, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
			def, err := venues.ByName(name)
			if err != nil {
				return fmt.Errorf("request path: %w", err)
			}
			v := def.Build(nil)
			call, err := v.Describer.Describe(&exchange.Request{Method: req.Method, Path: "/" + rest, RawQuery: req.URL.RawQuery, Header: req.Header, Body: body})
			if err != nil {
				return fmt.Errorf("describe: %w", err)
			}
			call.Venue = def.Name
			db, err := sqlite.Open(cmd.Context(), sqlite.Options{Dir: a.cfg.DataDir, Logger: a.log})
			if err != nil {
				return err
			}
			defer db.Close()
			c, err := client.New(client.Options{Store: db}).Get(cmd.Context(), def.Name, clientID)
			if err != nil {
				return fmt.Errorf("client %s at %s: %w", clientID, def.Name, err)
			}
			pols, err := policy.CompileAll(a.cfg.Policies)
			if err != nil {
				return err
			}
			ps := fixedPrices{}
			for _, p := range prices {
				sym, val, ok := strings.Cut(p, "=")
				f, err := strconv.ParseFloat(val, 64)
				if !ok || err != nil || f <= 0 {
					return fmt.Errorf("--price %q: want SYMBOL=PRICE", p)
				}
				ps[sym] = f
			}
			eng := policy.NewEngine(policy.Options{Policies: pols, Prices: ps})
			ip, _ := netip.ParseAddr(from)
			res, err := eng.Explain(c.Policy, policy.Input{Call: call, Client: c.ID, Key: def.Exchange + "/" + c.Key,
				Venue: def.Name, SourceIP: ip, Now: time.Now(), CredentialExpires: c.Expires})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s %s → %s scope %s, %d orders", req.Method, req.URL.Path, call.Endpoint, call.Scope, len(call.Orders))
			if call.Transfer != nil {
				fmt.Fprintf(a.stdout, ", transfer of %g %s to %q", call.Transfer.Amount, call.Transfer.Asset, call.Transfer.Address)
			}
			fmt.Fprintf(a.stdout, "\npolicy %s for client %s:\n", c.Policy, c.ID)
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			verdict := "ALLOW"
			for _, r := range res {
				if r.Result == policy.Deny {
					verdict = "DENY"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Rule, r.Result, r.Reason)
			}
			tw.Flush()
			fmt.Fprintf(a.stdout, "decision: %s\n", verdict)
			return nil
		},
	}
	cmd.Flags().StringVar(&clientID, "client", "", "client credential id (required)")
	cmd.Flags().StringVar(&reqFile, "request", "", "file holding the recorded HTTP request (required)")
	cmd.Flags().StringVar(&from, "from", "", "source address to assume")
	cmd.Flags().StringSliceVar(&prices, "price", nil, "reference price, SYMBOL=PRICE (repeatable)")
	_ = cmd.MarkFlagRequired("client")
	_ = cmd.MarkFlagRequired("request")
	return cmd
}

// normalizeHTTP turns a hand-written request file (LF line ends, maybe no
// final blank line) into wire form.
func normalizeHTTP(b []byte) []byte {
	head, body, found := bytes.Cut(b, []byte("\n\n"))
	if !found {
		head, body, found = bytes.Cut(b, []byte("\r\n\r\n"))
	}
	head = bytes.ReplaceAll(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	var out bytes.Buffer
	out.Write(head)
	out.WriteString("\r\n")
	if found && len(body) > 0 && !bytes.Contains(bytes.ToLower(head), []byte("content-length")) {
		fmt.Fprintf(&out, "Content-Length: %d\r\n", len(body))
	}
	out.WriteString("\r\n")
	out.Write(body)
	return out.Bytes()
}

type fixedPrices map[string]float64

func (p fixedPrices) LastPrice(_, symbol string) (float64, bool) {
	v, ok := p[symbol]
	return v, ok
}
