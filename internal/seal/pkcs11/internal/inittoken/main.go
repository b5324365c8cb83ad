//go:build pkcs11

// Command inittoken initialises a free token of a PKCS#11 module (SoftHSM2
// in tests) with a label, a security officer PIN and a user PIN, both read
// from files so that neither appears in argv. scripts/setup/softhsm.sh
// runs it. A token with the label already present is left alone.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/miekg/pkcs11"
)

func main() {
	module := flag.String("module", "", "PKCS#11 library")
	label := flag.String("label", "", "token label")
	pinFile := flag.String("pin-file", "", "file holding the user PIN")
	soPinFile := flag.String("so-pin-file", "", "file holding the security officer PIN")
	flag.Parse()
	if err := run(*module, *label, *pinFile, *soPinFile); err != nil {
		fmt.Fprintln(os.Stderr, "inittoken:", err)
		os.Exit(1)
	}
}

func readPIN(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	p := string(bytes.TrimSpace(b))
	if len(p) < 4 {
		return "", fmt.Errorf("PIN in %s is shorter than 4 characters", path)
	}
	return p, nil
}

func run(module, label, pinFile, soPinFile string) error {
	if module == "" || label == "" || pinFile == "" || soPinFile == "" {
		return errors.New("need -module, -label, -pin-file and -so-pin-file")
	}
	pin, err := readPIN(pinFile)
	if err != nil {
		return err
	}
	soPin, err := readPIN(soPinFile)
	if err != nil {
		return err
	}
	p := pkcs11.New(module)
	if p == nil {
		return fmt.Errorf("cannot load %s", module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	defer p.Finalize()

	find := func(want func(pkcs11.TokenInfo) bool) (uint, bool, error) {
		slots, err := p.GetSlotList(true)
		if err != nil {
			return 0, false, err
		}
		for _, s := range slots {
			ti, err := p.GetTokenInfo(s)
			if err == nil && want(ti) {
				return s, true, nil
			}
		}
		return 0, false, nil
	}
	byLabel := func(ti pkcs11.TokenInfo) bool {
		return ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 && strings.TrimRight(ti.Label, " \x00") == label
	}
	if _, ok, err := find(byLabel); err != nil {
		return err
	} else if ok {
		fmt.Printf("token %q already initialised\n", label)
		return nil
	}
	free, ok, err := find(func(ti pkcs11.TokenInfo) bool { return ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 })
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("no free token slot")
	}
	if err := p.InitToken(free, soPin, label); err != nil {
		return fmt.Errorf("init token: %w", err)
	}
	// SoftHSM moves an initialised token to a new slot: look it up again.
	slot, ok, err := find(byLabel)
	if err != nil || !ok {
		return fmt.Errorf("token %q not found after initialisation (%v)", label, err)
	}
	sess, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer p.CloseSession(sess)
	if err := p.Login(sess, pkcs11.CKU_SO, soPin); err != nil {
		return fmt.Errorf("security officer login: %w", err)
	}
	defer p.Logout(sess)
	if err := p.InitPIN(sess, pin); err != nil {
		return fmt.Errorf("init user PIN: %w", err)
	}
	fmt.Printf("token %q initialised\n", label)
	return nil
}
