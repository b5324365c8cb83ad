package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keywarden/keywarden/internal/exchange"
	"github.com/keywarden/keywarden/internal/exchange/sim"
	"github.com/keywarden/keywarden/internal/venues"
)

func newSimulateCmd(a *app) *cobra.Command {
	var which string
	var host string
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run local exchange simulators on loopback, for trying keywarden without real keys",
		Long: `simulate runs the exchange simulators keywarden's tests use: each verifies
signatures exactly as its exchange does, keeps a small order book and balances,
and answers with the exchange's own bodies and errors. It creates one account
per exchange with every permission, prints its key and secret (simulator
credentials, worthless anywhere else), and prints the [[venue]] tables that
point keywarden at the simulators. Loopback addresses only.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !isLoopbackHost(host) {
				return fmt.Errorf("--host %s: simulators listen on loopback addresses only", host)
			}
			selected := map[string]bool{}
			if which != "all" {
				for _, n := range strings.Split(which, ",") {
					if _, err := venues.ByName(strings.TrimSpace(n)); err != nil {
						return err
					}
					selected[strings.TrimSpace(n)] = true
				}
			}
			type running struct {
				url     string
				key     exchange.Credential
				venues  []string
				srv     *http.Server
				exName  string
				needsPP bool
			}
			byExchange := map[string]*running{}
			for _, d := range venues.Known() {
				if which != "all" && !selected[d.Name] {
					continue
				}
				r, ok := byExchange[d.Exchange]
				if !ok {
					kit := sim.NewKit()
					secret := randHex(32)
					if d.Format.Base64Secret {
						secret = base64.StdEncoding.EncodeToString([]byte(randHex(32)))
					}
					key := exchange.Credential{Kind: exchange.KeyHMAC, APIKey: "sim" + randHex(16), Secret: exchange.Secret(secret)}
					if d.Format.Passphrase {
						key.Passphrase = exchange.Secret("sim" + randHex(8))
					}
					kit.AddAccount(sim.Account{Key: key, Permissions: map[string]bool{"read": true, "trade": true, "transfer": true, "withdraw": true}})
					ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
					if err != nil {
						return err
					}
					hs := &http.Server{Handler: d.Simulator(kit), ReadHeaderTimeout: 5 * time.Second}
					go func() { _ = hs.Serve(ln) }()
					defer hs.Close()
					r = &running{url: "http://" + ln.Addr().String(), key: key, srv: hs, exName: d.Exchange, needsPP: d.Format.Passphrase}
					byExchange[d.Exchange] = r
				}
				r.venues = append(r.venues, d.Name)
			}
			if len(byExchange) == 0 {
				return fmt.Errorf("no venue selected")
			}
			names := make([]string, 0, len(byExchange))
			for n := range byExchange {
				names = append(names, n)
			}
			sort.Strings(names)
			out := a.stdout
			fmt.Fprintln(out, "# Simulators (loopback only). Simulator accounts, for `keywarden key add --exchange X --name sim --stdin`:")
			for _, n := range names {
				r := byExchange[n]
				fmt.Fprintf(out, "#   %-15s %s  api_key=%s secret=%s", n, r.url, r.key.APIKey, string(r.key.Secret))
				if r.needsPP {
					fmt.Fprintf(out, " passphrase=%s", string(r.key.Passphrase))
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "\n# Configuration pointing keywarden at them:")
			for _, n := range names {
				for _, v := range byExchange[n].venues {
					fmt.Fprintf(out, "[[venue]]\nname = %q\nupstream = %q\n\n", v, byExchange[n].url)
				}
			}
			ctx := cmd.Context()
			if duration > 0 {
				select {
				case <-time.After(duration):
				case <-ctx.Done():
				}
				return nil
			}
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&which, "venue", "all", "venues to simulate: all, or a comma-separated list")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "loopback address to listen on")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (default: until interrupted)")
	return cmd
}
