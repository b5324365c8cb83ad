package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// errInputEnded is returned when stdin ends before the expected input.
var errInputEnded = errors.New("input ended early")

// prompter reads operator input: from the terminal without echo when stdin
// is one, otherwise line by line from stdin. Prompts go to stderr so that
// stdout stays clean for output.
type prompter struct {
	in  *bufio.Reader
	tty int // stdin's file descriptor when it is a terminal, else -1
	out io.Writer
}

func newPrompter(stdin io.Reader, stderr io.Writer) *prompter {
	p := &prompter{in: bufio.NewReader(stdin), tty: -1, out: stderr}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = int(f.Fd())
	}
	return p
}

func (p *prompter) interactive() bool { return p.tty >= 0 }

// secret asks for a secret without echo. Off a terminal it reads one line
// from stdin. The caller zeroes the result.
func (p *prompter) secret(prompt string) ([]byte, error) {
	if p.interactive() {
		fmt.Fprint(p.out, prompt)
		b, err := term.ReadPassword(p.tty)
		fmt.Fprintln(p.out)
		if err != nil {
			return nil, fmt.Errorf("read from terminal: %w", err)
		}
		return b, nil
	}
	return p.line()
}

// text asks for a non-secret value, with echo.
func (p *prompter) text(prompt string) (string, error) {
	if p.interactive() {
		fmt.Fprint(p.out, prompt)
	}
	b, err := p.line()
	return string(b), err
}

// line reads one line from stdin without its line ending. The caller zeroes
// the result.
func (p *prompter) line() ([]byte, error) {
	var buf []byte
	for range 1 << 16 { // a line is at most 64 KiB worth of fragments
		frag, isPrefix, err := p.in.ReadLine()
		if err != nil {
			clear(buf)
			if errors.Is(err, io.EOF) {
				return nil, errInputEnded
			}
			return nil, err
		}
		buf = append(buf, frag...)
		clear(frag)
		if !isPrefix {
			return buf, nil
		}
	}
	clear(buf)
	return nil, errors.New("input line too long")
}

// rest reads everything left on stdin, up to limit bytes.
func (p *prompter) rest(limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p.in, limit+1))
	if err != nil {
		clear(b)
		return nil, err
	}
	if int64(len(b)) > limit {
		clear(b)
		return nil, fmt.Errorf("input is larger than %d bytes", limit)
	}
	return b, nil
}

// newPassphrase asks for a new passphrase twice on the terminal.
func (p *prompter) newPassphrase() ([]byte, error) {
	if !p.interactive() {
		return nil, errors.New("no passphrase: set [vault] passphrase_file or KEYWARDEN_PASSPHRASE_FILE, or run in a terminal")
	}
	a, err := p.secret("New vault passphrase (at least 12 characters): ")
	if err != nil {
		return nil, err
	}
	b, err := p.secret("Repeat the passphrase: ")
	if err != nil {
		clear(a)
		return nil, err
	}
	defer clear(b)
	if string(a) != string(b) {
		clear(a)
		return nil, errors.New("the passphrases do not match")
	}
	return a, nil
}

// looksLikeSecret reports whether a command-line value looks like key
// material: a PEM block, or a long token mixing upper case, lower case and
// digits, as API secrets do.
func looksLikeSecret(s string) bool {
	if strings.Contains(s, "-----BEGIN") || strings.Contains(s, "PRIVATE KEY") {
		return true
	}
	if len(s) < 20 || strings.ContainsAny(s, " \t") {
		return false
	}
	var upper, lower, digit bool
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return upper && lower && digit
}
