package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// glob is a compiled shell-style pattern: '*' matches any run of characters
// (including '/' and none at all), '?' matches exactly one character, and
// every other character matches itself. When fold is set, ASCII letters
// match either case; other characters must match exactly, so Unicode case
// folding (the Kelvin sign folding to 'k', for one) cannot smuggle a
// look-alike symbol past an allowlist.
type glob struct {
	pattern string // as written
	pat     string // lower-cased for fold globs
	fold    bool
	literal bool // no wildcard: a plain comparison
}

// compileGlob validates pattern and returns it compiled.
func compileGlob(pattern string, fold bool) (glob, error) {
	if pattern == "" {
		return glob{}, fmt.Errorf("empty pattern")
	}
	if !utf8.ValidString(pattern) {
		return glob{}, fmt.Errorf("pattern is not valid UTF-8")
	}
	for _, r := range pattern {
		if r < 0x20 || r == 0x7f {
			return glob{}, fmt.Errorf("pattern %q contains a control character", pattern)
		}
	}
	if strings.Contains(pattern, "**") {
		return glob{}, fmt.Errorf("pattern %q contains \"**\" (one '*' already matches any run of characters)", pattern)
	}
	g := glob{pattern: pattern, pat: pattern, fold: fold}
	if fold {
		g.pat = asciiLower(pattern)
	}
	g.literal = !strings.ContainsAny(pattern, "*?")
	return g, nil
}

// match reports whether s matches the whole pattern. It runs in
// O(len(pattern)*len(s)) time at worst and never recurses.
func (g glob) match(s string) bool {
	if g.literal {
		if g.fold {
			return asciiEqualFold(g.pat, s)
		}
		return g.pat == s
	}
	p := g.pat
	var pi, si int
	// Position to resume from after the last '*': the pattern index just
	// past the star and the subject index the star has consumed up to.
	star, starSi := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch c := p[pi]; c {
			case '*':
				star, starSi = pi+1, si
				pi++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[si:])
				pi++
				si += n
				continue
			default:
				sc := s[si]
				if g.fold {
					sc = lowerByte(sc)
				}
				if c == sc {
					pi++
					si++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		// Let the last star swallow one more character and retry.
		_, n := utf8.DecodeRuneInString(s[starSi:])
		starSi += n
		pi, si = star, starSi
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiLower lower-cases ASCII letters only.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

// asciiEqualFold compares lower (already lower-cased) with s, folding ASCII
// letters of s only.
func asciiEqualFold(lower, s string) bool {
	if len(lower) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower[i] != lowerByte(s[i]) {
			return false
		}
	}
	return true
}

// globList is a set of patterns; a subject matches when any pattern does.
type globList []glob

func compileGlobs(field string, patterns []string, fold bool) (globList, error) {
	gs := make(globList, 0, len(patterns))
	for i, p := range patterns {
		g, err := compileGlob(p, fold)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		gs = append(gs, g)
	}
	return gs, nil
}

func (gs globList) match(s string) bool {
	for _, g := range gs {
		if g.match(s) {
			return true
		}
	}
	return false
}
