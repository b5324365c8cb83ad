//go:build !pkcs11

package main

import "testing"

func TestSealPKCS11NotBuilt(t *testing.T) {
	c := newCLI(t)
	c.fails("built without pkcs11 support", "", "operator", "init", "--seal", "pkcs11:///usr/lib/softhsm/libsofthsm2.so?token=t&pin_file=/p")
}
