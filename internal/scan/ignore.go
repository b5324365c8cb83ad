package scan

import (
	"path"
	"strings"
)

// ignorer matches slash-separated paths relative to the scan root against
// gitignore-like patterns:
//
//	# comment          blank lines and comments are skipped
//	*.min.js           no slash: matches the name at any depth
//	/build             leading slash: anchored at the root
//	docs/**/*.md       ** matches any number of directories
//	vendor/            trailing slash: directories only
//	!keep.txt          negation: a later match un-ignores
//
// The last matching pattern wins, as in git. A path under an ignored
// directory is ignored (the walk does not enter it).
type ignorer struct {
	pats []ignorePattern
}

type ignorePattern struct {
	segs     []string
	anchored bool
	dirOnly  bool
	negate   bool
}

func newIgnorer(lines []string) *ignorer {
	ig := &ignorer{}
	for _, l := range lines {
		ig.add(l)
	}
	return ig
}

// add parses one or more lines of patterns.
func (ig *ignorer) add(text string) {
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		var p ignorePattern
		if strings.HasPrefix(l, "!") {
			p.negate, l = true, l[1:]
		}
		if strings.HasSuffix(l, "/") {
			p.dirOnly, l = true, strings.TrimRight(l, "/")
		}
		if strings.HasPrefix(l, "/") {
			p.anchored, l = true, strings.TrimLeft(l, "/")
		} else if strings.Contains(l, "/") {
			p.anchored = true // a slash in the middle anchors, as in git
		}
		if l == "" {
			continue
		}
		p.segs = strings.Split(l, "/")
		if !p.anchored {
			p.segs = append([]string{"**"}, p.segs...)
		}
		ig.pats = append(ig.pats, p)
	}
}

// match reports whether rel (slash-separated, relative to the root) is
// ignored. Every parent directory is checked too, so a file under an
// ignored directory is ignored even when the walk did not prune it.
func (ig *ignorer) match(rel string, isDir bool) bool {
	if len(ig.pats) == 0 {
		return false
	}
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		if ig.matchOne(parts[:i], true) {
			return true
		}
	}
	return ig.matchOne(parts, isDir)
}

func (ig *ignorer) matchOne(parts []string, isDir bool) bool {
	ignored := false
	for _, p := range ig.pats {
		if p.dirOnly && !isDir {
			continue
		}
		if matchSegs(p.segs, parts) {
			ignored = !p.negate
		}
	}
	return ignored
}

// matchSegs matches pattern segments (with **) against path segments.
func matchSegs(pat, parts []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(parts); i++ {
				if matchSegs(rest, parts[i:]) {
					return true
				}
			}
			return false
		}
		if len(parts) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], parts[0]); err != nil || !ok {
			return false
		}
		pat, parts = pat[1:], parts[1:]
	}
	return len(parts) == 0
}
