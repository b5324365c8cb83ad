package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/keywarden/keywarden/internal/vault"
)

// sharePrefix marks an encoded unseal share.
const sharePrefix = "kws1-"

func encodeShare(s []byte) string { return sharePrefix + base64.RawURLEncoding.EncodeToString(s) }

func decodeShare(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, sharePrefix) {
		return nil, errors.New("not an unseal share (shares start with " + sharePrefix + ")")
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(sharePrefix):])
	if err != nil {
		return nil, errors.New("unseal share is not valid base64")
	}
	return b, nil
}

// openVault opens the data directory and a sealed vault over it. The
// caller closes the DB.
func openVault(ctx context.Context, cfg *Config, log *slog.Logger) (*vault.Vault, dataStore, error) {
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	v, err := vault.New(vault.Options{Store: db, Logger: log})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return v, db, nil
}

// unsealFromConfig unseals v for this process: with the passphrase file
// from the configuration, or else a passphrase typed on the terminal; or
// with Shamir shares read one per line from the terminal or stdin. Progress
// goes to p's output.
func unsealFromConfig(ctx context.Context, v *vault.Vault, cfg *Config, p *prompter) error {
	if err := recoverSealMigration(ctx, v); err != nil {
		return err
	}
	st, err := v.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Initialized {
		return fmt.Errorf("the vault in %s is not initialized (run keywarden operator init)", cfg.DataDir)
	}
	if !st.Sealed {
		return nil
	}
	switch st.SealType {
	case vault.SealPassphrase:
		pass, err := passphrase(cfg, p, "Vault passphrase: ")
		if err != nil {
			return err
		}
		defer clear(pass)
		return v.Unseal(ctx, pass)
	case vault.SealShamir:
		return submitShares(ctx, v, st.Threshold, p)
	case vault.SealExternal:
		return unsealExternal(ctx, v, cfg, st)
	default:
		return fmt.Errorf("the vault uses the %s seal, which this command cannot unseal", st.SealType)
	}
}

// passphrase reads the passphrase from the configured file or the terminal.
func passphrase(cfg *Config, p *prompter, prompt string) ([]byte, error) {
	if cfg.Vault.PassphraseFile != "" {
		return readPassphraseFile(cfg.Vault.PassphraseFile)
	}
	if cfg.Vault.PassphraseKeyring {
		return keyringPassphrase(cfg)
	}
	if !p.interactive() {
		return nil, errors.New("no passphrase: set [vault] passphrase_file or KEYWARDEN_PASSPHRASE_FILE, or run in a terminal")
	}
	return p.secret(prompt)
}

// submitShares reads shares until the vault unseals. Each bad share is
// reported and another is asked for; the number of attempts is bounded.
func submitShares(ctx context.Context, v *vault.Vault, need int, p *prompter) error {
	fmt.Fprintf(p.out, "The vault is sealed with %d-of-n unseal shares. Enter one share per line.\n", need)
	have := 0
	for attempt := 0; attempt < 3*need+3; attempt++ {
		line, err := p.secret(fmt.Sprintf("Unseal share %d of %d: ", have+1, need))
		if err != nil {
			if errors.Is(err, errInputEnded) {
				return fmt.Errorf("unseal: input ended with %d of %d shares", have, need)
			}
			return err
		}
		share, err := decodeShare(string(line))
		clear(line)
		if err != nil {
			fmt.Fprintf(p.out, "share refused: %v\n", err)
			continue
		}
		prog, err := v.SubmitShare(ctx, share)
		clear(share)
		have = prog.Have
		if errors.Is(err, vault.ErrBadShares) {
			return fmt.Errorf("unseal: %w; start again with the right shares", err)
		}
		if err != nil {
			fmt.Fprintf(p.out, "share refused: %v\n", err)
			continue
		}
		fmt.Fprintf(p.out, "%d of %d shares\n", prog.Have, prog.Need)
		if !v.Sealed() {
			return nil
		}
	}
	return fmt.Errorf("unseal: too many refused shares (%d of %d accepted)", have, need)
}
