//go:build !keyring

package main

import "testing"

func TestKeyringNotBuilt(t *testing.T) {
	c := newCLI(t)
	c.ok("", "operator", "init")
	c.fails("built without keyring support", "", "operator", "keyring-store")
}
