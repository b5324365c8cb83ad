package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// File is the shape of a policy file: [policy.NAME] tables.
type File struct {
	Policy map[string]Definition `toml:"policy"`
}

// LoadFile reads a TOML file of [policy.NAME] tables strictly and compiles
// every policy in it. Unknown keys are errors that name the key and its
// line.
func LoadFile(path string) (map[string]*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	ps, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("load policies from %s: %w", path, err)
	}
	return ps, nil
}

// Load is LoadFile for TOML text already in memory.
func Load(data []byte) (map[string]*Policy, error) {
	var f File
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, err
	}
	if err := UndecodedError(md, data); err != nil {
		return nil, err
	}
	if len(f.Policy) == 0 {
		return nil, errors.New("no [policy.NAME] tables")
	}
	return CompileAll(f.Policy)
}

// UndecodedError returns an error naming every key of text that md did not
// decode, with its line, or nil when there is none. Configuration loaders
// that embed Definitions use it to stay strict.
func UndecodedError(md toml.MetaData, text []byte) error {
	var errs []error
	var reported []toml.Key
	for _, k := range md.Undecoded() {
		// A key under an unknown table is reported with its table.
		under := false
		for _, r := range reported {
			if len(k) > len(r) && slicesHasPrefix(k, r) {
				under = true
				break
			}
		}
		if under {
			continue
		}
		reported = append(reported, k)
		if line := keyLine(text, k); line > 0 {
			errs = append(errs, fmt.Errorf("line %d: unknown key %s", line, k))
		} else {
			errs = append(errs, fmt.Errorf("unknown key %s", k))
		}
	}
	return errors.Join(errs...)
}

func slicesHasPrefix(k, prefix toml.Key) bool {
	for i := range prefix {
		if k[i] != prefix[i] {
			return false
		}
	}
	return true
}

// keyLine finds the line that defines key in text: a table header naming
// it, or a "name = value" line inside the right table. It understands bare
// and quoted keys and dotted keys, which is all a policy file uses; it
// returns 0 when it cannot tell (inline tables).
func keyLine(text []byte, key toml.Key) int {
	want := strings.Join(key, "\x00")
	var table []string
	for i, line := range strings.Split(string(text), "\n") {
		s := strings.TrimSpace(line)
		if s == "" || s[0] == '#' {
			continue
		}
		if strings.HasPrefix(s, "[") {
			h := strings.TrimPrefix(strings.TrimPrefix(s, "["), "[")
			end := strings.Index(h, "]")
			if end < 0 {
				continue
			}
			table = splitKey(h[:end])
			if strings.Join(table, "\x00") == want {
				return i + 1
			}
			continue
		}
		name, _, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		full := append(append([]string{}, table...), splitKey(name)...)
		if strings.Join(full, "\x00") == want {
			return i + 1
		}
	}
	return 0
}

// splitKey splits a dotted TOML key into its parts, unquoting quoted parts.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}
