package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
)

// Character classes of the tokenizer. A token is a maximal run of
// characters with a class bit, plus up to two '=' of base64 padding.
const (
	cDigit      = 1 << iota // 0-9
	cLowerHex               // a-f
	cLowerOther             // g-z
	cUpperHex               // A-F
	cUpperOther             // G-Z
	cPlusSlash              // + /
	cUnder                  // _
	cDash                   // -
)

const (
	cLower   = cLowerHex | cLowerOther
	cUpper   = cUpperHex | cUpperOther
	cAlnum   = cDigit | cLower | cUpper
	cB64     = cAlnum | cPlusSlash
	cB64URL  = cAlnum | cUnder | cDash
	minToken = 16
	maxToken = 128
	// contextLines and contextBytes bound the look-back for venue
	// keywords.
	contextLines = 6
	contextBytes = 1024
	// lineAhead bounds the look-ahead for keywords after a token.
	lineAhead = 256
	// maxPEM bounds the distance between a PEM header and its footer.
	maxPEM = 16 << 10
)

var classOf = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cLowerOther
		t[c-'a'+'A'] = cUpperOther
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = cLowerHex
		t[c-'a'+'A'] = cUpperHex
	}
	t['+'], t['/'] = cPlusSlash, cPlusSlash
	t['_'] = cUnder
	t['-'] = cDash
	return t
}()

// source names what is being scanned.
type source struct {
	name   string
	commit string
}

// knownPublic holds the SHA-256 of keys published in exchange and SDK
// documentation as examples: they are in every client library's tests and
// are not anyone's secret.
var knownPublic = map[string]string{
	"5ba1ed8425baaa72d558afddb8aaacdfe29ad0dc1a44dae76640127e83626d29": "binance docs api key",
	"23e9efa3ced6e70c7f2dbe0d08295f18f94b0cbd5c6026677e3bc51897ee31f2": "binance docs secret",
	"3b76d52c452446111712fa1a02da33ede27938e6e2ba943f514f3929b837f043": "binance docs rsa api key",
	"1fbf6d20358e3554bec0ce4baf6ddd166cdc09e02b14833151082dd81ac2a2df": "binance futures docs api key",
	"c2cdb5350be92a49d4d191ad931ad58083eb11cf4b96efc0a8256341faf79cce": "binance futures docs secret",
	"e6332270b07efd912aa582c5229da1dada9d23835abccc0a85077e51a64ce910": "binance futures docs rsa api key",
	"98c0adc16caa135bf2c8732f2558ae4e3e03443c4d1a20b8974fed384ad505d8": "kraken docs secret",
	"be6dea60bbf9e9f72efa7dabf56d42f38aecd567931491eac9ea122536cd5831": "kraken futures docs secret",
	"3348a210571dae24b01d779fc2708651bf7f416d3f9938068c91790e86407923": "kraken futures docs rest secret",
	"477a08c0eb19eedcfbcaaf28687d05fd4854161e23ecce1b8836a4ece1d880e9": "okx docs secret",
	"548a18e84bbd5a42a7582a83a24e1707b952a0630ea6c76f23dc5dec95500390": "bitmex docs api key",
	"70a60ac1776fdc4af8cf2d4cac2fcc9465223e956427ff650c8416878212a548": "bitmex docs secret",
	"3c00e49fbbcd9f611bc253dfb3ade2a5565d2c8263747e512c0791db36c72730": "hyperliquid sdk test wallet",
	"ba1dd2bb20c60cce92adf531543c39a775f4f90c6b3c185ad8c1e3d5c563897b": "coinbase sdk ed25519 test key",
	"a9762849fee831862bd97587031cbe33b617d52b21793e385c3a26b20aec4021": "coinbase sdk ed25519 test seed",
	"712d7811c8727440a5f2375fb28b43505c487050d939f5f6f0012a507601355a": "coinbase sdk ed25519 pkcs8 test key",
	"88ae04422d78afaf16c3a3f91d31ff15778ccd59d23028a8c77d7ec7d50ddca0": "coinbase sdk ec test key",
	"88a07940499df805e429410fb07b23408a5375962ad3960210e7c2c7aac67779": "binance docs ed25519 api key",
	"59e6bf3ccb36ee2b37eada1342cfb2c099ca98c4f3802a7bf9cc8e216fc0b7c9": "kraken docs api key (get api key info)",
	"4541fae334fbd6aa72cd2ef52465e43278fb1333f42d64182eb6362d77d0fae5": "ed25519 test key from seed 01..20",
}

func isKnownPublic(b []byte) bool {
	sum := sha256.Sum256(b)
	_, ok := knownPublic[hex.EncodeToString(sum[:])]
	return ok
}

// exampleMarkers on a finding's line or the line before mark the value as
// a documented example or test vector rather than a secret.
var exampleMarkers = [][]byte{
	[]byte("test vector"), []byte("test-vector"), []byte("test_vector"), []byte("testvector"),
	[]byte("dummy"), []byte("placeholder"), []byte("fake"), []byte("example key"), []byte("example secret"),
	[]byte("do not use"), []byte("not a real"), []byte("example response"), []byte("example request"),
	[]byte("keywarden:allow"),
}

// scanner state for one buffer.
type pass struct {
	s     *Scanner
	buf   []byte
	src   source
	skip  int // findings starting before skip were reported already
	emit  func(Finding)
	lower []byte // scratch for lower-cased context

	// line cursor: line number of offset lineAt.
	lineAt, lineNo int

	excluded [][2]int // PEM blocks, not tokenized
	venues   []venueHit
	reported map[int]bool // offsets already reported
}

// venueHit remembers where a venue's credential was found, for the
// passphrase-near-key rule.
type venueHit struct {
	venue string
	line  int
}

// scanContent scans buf, whose first line is firstLine, and emits the
// findings that start at or after skip.
func (s *Scanner) scanContent(buf []byte, src source, firstLine, skip int, emit func(Finding)) {
	p := &pass{s: s, buf: buf, src: src, skip: skip, emit: emit, lineNo: firstLine}
	p.pems()
	p.tokens()
	if len(p.venues) > 0 {
		p.passphrases()
	}
}

// line returns the 1-based line number of offset off (off must not go
// backwards between calls by more than the cursor allows).
func (p *pass) line(off int) int {
	if off < p.lineAt {
		return p.lineNo - bytes.Count(p.buf[off:p.lineAt], []byte{'\n'})
	}
	p.lineNo += bytes.Count(p.buf[p.lineAt:off], []byte{'\n'})
	p.lineAt = off
	return p.lineNo
}

// lineStart is the start of the line holding off, or contextBytes before
// off on a longer line (minified code): context never reaches further, so
// the cost per candidate is bounded.
func (p *pass) lineStart(off int) int {
	lo := max(0, off-contextBytes)
	return lo + bytes.LastIndexByte(p.buf[lo:off], '\n') + 1
}

// lineEnd is the end of the line holding off, or lineAhead bytes after it.
func (p *pass) lineEnd(off int) int {
	hi := min(len(p.buf), off+lineAhead)
	if i := bytes.IndexByte(p.buf[off:hi], '\n'); i >= 0 {
		return off + i
	}
	return hi
}

// contextStart is where the keyword look-back of a token at off begins.
func (p *pass) contextStart(off int) int {
	start := p.lineStart(off)
	floor := max(0, off-contextBytes)
	for range contextLines {
		if start <= floor || start == 0 {
			break
		}
		start = bytes.LastIndexByte(p.buf[:start-1], '\n') + 1
	}
	return max(start, floor)
}

// lowerOf lower-cases b into the pass's scratch buffer.
func (p *pass) lowerOf(b []byte) []byte {
	p.lower = p.lower[:0]
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		p.lower = append(p.lower, c)
	}
	return p.lower
}

// hasWord reports whether text holds kw not preceded by a letter (so
// "gate" does not match "navigate").
func hasWord(text []byte, kw string) bool {
	for off := 0; ; {
		i := bytes.Index(text[off:], []byte(kw))
		if i < 0 {
			return false
		}
		i += off
		if i == 0 || !isLetter(text[i-1]) {
			return true
		}
		off = i + 1
	}
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// suppressed reports whether a finding at [start, end) is allowed inline,
// marked as an example, or a known published example.
func (p *pass) suppressed(start int, value []byte) bool {
	ls := p.lineStart(start)
	from := ls
	if ls > 0 {
		from = bytes.LastIndexByte(p.buf[:ls-1], '\n') + 1
	}
	end := min(start+len(value), len(p.buf))
	if bytes.Index(p.buf[start:end], value) != 0 {
		end = start // the value was decoded from the text (PEM)
	}
	to := p.lineEnd(end)
	// The value itself is left out: a random secret may spell "fake".
	for _, seg := range [][]byte{p.buf[from:start], p.buf[end:to]} {
		low := p.lowerOf(seg)
		for _, m := range exampleMarkers {
			if bytes.Contains(low, m) {
				return true
			}
		}
	}
	return isKnownPublic(value)
}

// report emits a finding for value at [start, end).
func (p *pass) report(r *rule, start int, value []byte, live *Live) {
	ln := p.line(start)
	if r.venue != "" {
		p.venues = append(p.venues, venueHit{venue: r.venue, line: ln})
	}
	if start < p.skip || p.reported[start] {
		return
	}
	if p.reported == nil {
		p.reported = map[int]bool{}
	}
	p.reported[start] = true
	f := Finding{
		Rule: r.id, Venue: r.venue, What: r.what, Severity: r.severity,
		Source: p.src.name, Commit: p.src.commit, Line: ln, Column: start - bytes.LastIndexByte(p.buf[:start], '\n'),
		Redacted: redact(value), Length: len(value), Live: live,
	}
	if live != nil {
		f.Severity = Critical
	}
	f.ID = findingID(&f)
	p.emit(f)
}

func (p *pass) match(kind MaterialKind, b []byte) *Live {
	if p.s.opts.Matcher == nil {
		return nil
	}
	if l, ok := p.s.opts.Matcher.Match(kind, b); ok {
		return l
	}
	return nil
}

// tokens runs the tokenizer over the buffer outside PEM blocks.
func (p *pass) tokens() {
	buf := p.buf
	n := len(buf)
	ex := p.excluded
	for i := 0; i < n; {
		if len(ex) > 0 && i >= ex[0][0] {
			i = max(i, ex[0][1])
			ex = ex[1:]
			continue
		}
		if classOf[buf[i]] == 0 {
			i++
			continue
		}
		start := i
		var cls uint8
		for i < n {
			c := classOf[buf[i]]
			if c == 0 {
				break
			}
			cls |= c
			i++
		}
		end := i
		for end < n && end-i < 2 && buf[end] == '=' {
			end++
		}
		if l := end - start; l >= minToken && l <= maxToken {
			p.candidate(start, end, cls)
		}
		i = end
	}
}

// candidate classifies one token.
func (p *pass) candidate(start, end int, cls uint8) {
	tok := p.buf[start:end]
	t := tokenInfo{b: tok, cls: cls, padded: tok[len(tok)-1] == '='}
	if hasRun(tok, 6) {
		// "0123456789", "abcdef": made up, not drawn at random; only the
		// matcher may still know it.
		p.matchOnly(start, &t)
		return
	}
	for i := range rules {
		r := &rules[i]
		if !r.shape(&t) {
			continue
		}
		if t.entropy() < r.minEntropy {
			continue
		}
		if !p.contextOK(r, start, end) {
			continue
		}
		if r.verify != nil && !r.verify(tok) {
			continue
		}
		live := p.match(Token, tok)
		if live == nil && r.public != nil {
			if der := r.public(tok); der != nil {
				live = p.match(PublicKeyDER, der)
			}
		}
		// A live key is reported whatever the comments around it say.
		if live == nil && p.suppressed(start, tok) {
			return
		}
		p.report(r, start, tok, live)
		return
	}
	p.matchOnly(start, &t)
}

// matchOnly reports a token no rule took if the matcher knows it: still
// the operator's key.
func (p *pass) matchOnly(start int, t *tokenInfo) {
	if p.s.opts.Matcher != nil && t.entropy() >= 3 && bitsSet(t.cls&cAlnum) >= 2 {
		if live := p.match(Token, t.b); live != nil {
			p.report(&liveRule, start, t.b, live)
		}
	}
}

// contextOK checks a rule's venue and credential keywords around the
// token at [start, end).
func (p *pass) contextOK(r *rule, start, end int) bool {
	if len(r.venueKW) > 0 {
		cs := p.contextStart(start)
		le := p.lineEnd(end)
		found := false
		// The token itself is left out: random text may spell "okx".
		for _, seg := range [][]byte{p.buf[cs:start], p.buf[end:le]} {
			low := p.lowerOf(seg)
			for _, kw := range r.venueKW {
				if hasWord(low, kw) {
					found = true
					break
				}
			}
		}
		if !found {
			name := p.lowerOf([]byte(p.src.name))
			for _, kw := range r.venueKW {
				if hasWord(name, kw) {
					found = true
					break
				}
			}
		}
		if !found {
			return false
		}
	}
	if len(r.credKW) == 0 && len(r.notKW) == 0 {
		return true
	}
	key := p.keyName(start)
	var text []byte
	if len(key) > 0 {
		text = p.lowerOf(key)
	} else if r.keyOnly {
		return false
	} else {
		text = p.lowerOf(p.buf[p.lineStart(start):start])
	}
	for _, kw := range r.notKW {
		if bytes.Contains(text, []byte(kw)) {
			return false
		}
	}
	if len(r.credKW) == 0 {
		return true
	}
	for _, kw := range r.credKW {
		if bytes.Contains(text, []byte(kw)) {
			return true
		}
	}
	return false
}

// keyName returns the name a value at off is assigned to on its line:
// `name = "v"`, `"name": "v"`, `name: v`, `name => 'v'`, `name("v")`,
// `--name v`, or nil.
func (p *pass) keyName(off int) []byte {
	ls := p.lineStart(off)
	i := off
	skip := func(set string) {
		for i > ls && bytes.IndexByte([]byte(set), p.buf[i-1]) >= 0 {
			i--
		}
	}
	skip(" \t\"'`")
	if i == ls {
		return nil
	}
	switch c := p.buf[i-1]; c {
	case ',':
		// ("NAME", "value") only: a quoted name, not any argument list
		i--
		for i > ls && (p.buf[i-1] == ' ' || p.buf[i-1] == '\t') {
			i--
		}
		if i == ls || (p.buf[i-1] != '"' && p.buf[i-1] != '\'') {
			return nil
		}
	case '=', ':', '(':
		i--
		if c == '=' && i > ls && (p.buf[i-1] == ':' || p.buf[i-1] == '!') {
			i-- // :=
		}
	case '>':
		if i-2 >= ls && p.buf[i-2] == '=' {
			i -= 2
		}
	default:
		// "--api-secret value" or "KEY value" (.netrc, shell)
	}
	skip(" \t\"'`[]")
	end := i
	for i > ls {
		c := p.buf[i-1]
		if classOf[c]&(cAlnum|cUnder|cDash) == 0 && c != '.' {
			break
		}
		i--
	}
	if i == end {
		return nil
	}
	return p.buf[i:end]
}

// tokenInfo is one token and what is known about it.
type tokenInfo struct {
	b      []byte
	cls    uint8
	padded bool
	ent    float64
	hasEnt bool
}

func (t *tokenInfo) entropy() float64 {
	if !t.hasEnt {
		t.ent, t.hasEnt = shannon(t.b), true
	}
	return t.ent
}

// shannon is the Shannon entropy of b in bits per byte.
func shannon(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	var h float64
	for _, k := range counts {
		if k > 0 {
			q := float64(k) / n
			h -= q * math.Log2(q)
		}
	}
	return h
}

func bitsSet(x uint8) int {
	n := 0
	if x&cDigit != 0 {
		n++
	}
	if x&cLower != 0 {
		n++
	}
	if x&cUpper != 0 {
		n++
	}
	return n
}

// hasRun reports whether b holds n characters in a row that count up or
// down by one ("123456", "fedcba"). A random key of 64 letters and digits
// has one with a probability below one in ten million.
func hasRun(b []byte, n int) bool {
	up, down := 1, 1
	for i := 1; i < len(b); i++ {
		switch int(b[i]) - int(b[i-1]) {
		case 1:
			up, down = up+1, 1
		case -1:
			up, down = 1, down+1
		default:
			up, down = 1, 1
		}
		if up >= n || down >= n {
			return true
		}
	}
	return false
}
