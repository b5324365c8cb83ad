package sealtest

import (
	"testing"

	"github.com/keywarden/keywarden/internal/vault"
)

func TestSoft(t *testing.T) {
	s := NewSoft("key-1")
	Run(t, Backend{
		Seal:        func(*testing.T) vault.SealWrapper { return s },
		OtherKey:    func(*testing.T) vault.SealWrapper { return NewSoft("key-2") },
		Unavailable: func(*testing.T) vault.SealWrapper { return s.Unreachable() },
	})
}
