// Package keyring keeps the passphrase of a passphrase seal in the desktop
// keyring, for single-user installations: the Secret Service (GNOME
// Keyring, KWallet) through the secret-tool program on Linux, the login
// Keychain through the security program on macOS. The secret goes to and
// from those programs over pipes, never in their arguments.
//
// It is compiled in only with the build tag keyring; without it Get and
// Set return ErrNotBuilt.
package keyring

import "errors"

// Service is the service name entries are stored under; the account is
// the data directory.
const Service = "keywarden"

// ErrNotBuilt is returned in a binary built without the keyring tag.
var ErrNotBuilt = errors.New("keyring: keywarden was built without keyring support (rebuild with: go build -tags keyring)")

// ErrNotFound is returned by Get when the keyring has no entry.
var ErrNotFound = errors.New("keyring: no passphrase stored for this data directory")
