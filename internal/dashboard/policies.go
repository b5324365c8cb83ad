package dashboard

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/keywarden/keywarden/internal/policy"
)

func (h *Handler) policies(c *call) error {
	var names []string
	if err := c.api(h, "GET", "/v1/policies", nil, &names); err != nil {
		return err
	}
	h.render(c, http.StatusOK, "policies", "Policies", "policies", map[string]any{"Names": names})
	return nil
}

// policyText is a policy as a [policy.NAME] TOML table: the form operators
// write, and the form diffs are taken in.
func policyText(name string, d policy.Definition) (string, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(policy.File{Policy: map[string]policy.Definition{name: d}}); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (h *Handler) policyShow(c *call) error {
	name := c.r.PathValue("name")
	var d policy.Definition
	if err := c.api(h, "GET", "/v1/policies/"+url.PathEscape(name), nil, &d); err != nil {
		return err
	}
	text, err := policyText(name, d)
	if err != nil {
		return err
	}
	h.render(c, http.StatusOK, "policy", "Policy "+name, "policies", map[string]any{"Name": name, "Text": text})
	return nil
}

// diffLine is one line of a policy diff.
type diffLine struct {
	Op   string // "=", "+", "-"
	Text string
}

// Bounds of the check form: the pasted text, and the diff's table.
const (
	maxPolicyText = 64 << 10
	maxDiffCells  = 1 << 20
)

// policyCheck validates pasted policy TOML exactly as keywarden loads it
// (strict keys, compiled) and diffs it against a running policy.
func (h *Handler) policyCheck(c *call) error {
	text := c.r.PostFormValue("toml")
	against := c.r.PostFormValue("against")
	if len(text) > maxPolicyText {
		return badRequest("the pasted policy is too long")
	}
	var names []string
	if err := c.api(h, "GET", "/v1/policies", nil, &names); err != nil {
		return err
	}
	data := map[string]any{"Names": names, "Pasted": text, "Against": against}
	compiled, err := policy.Load([]byte(text))
	if err != nil {
		data["Invalid"] = err.Error()
		h.render(c, http.StatusUnprocessableEntity, "policies", "Policies", "policies", data)
		return nil
	}
	var valid []string
	for n := range compiled {
		valid = append(valid, n)
	}
	slices.Sort(valid)
	data["Valid"] = valid
	if against != "" {
		var f policy.File
		if _, err := toml.Decode(text, &f); err != nil {
			return badRequest(err.Error())
		}
		d, ok := f.Policy[against]
		if !ok && len(valid) == 1 {
			d, ok = f.Policy[valid[0]]
		}
		if !ok {
			data["DiffError"] = "the pasted text has no [policy." + against + "] table"
		} else {
			var cur policy.Definition
			if err := c.api(h, "GET", "/v1/policies/"+url.PathEscape(against), nil, &cur); err != nil {
				return err
			}
			a, err1 := policyText(against, cur)
			b, err2 := policyText(against, d)
			if err1 != nil || err2 != nil {
				return badRequest("cannot render the policies for a diff")
			}
			la, lb := strings.Split(strings.TrimRight(a, "\n"), "\n"), strings.Split(strings.TrimRight(b, "\n"), "\n")
			if len(la)*len(lb) > maxDiffCells {
				data["DiffError"] = "the policies are too long to diff here"
			} else {
				data["Diff"] = diffLines(la, lb)
			}
		}
	}
	h.render(c, http.StatusOK, "policies", "Policies", "policies", data)
	return nil
}

// diffLines is a longest-common-subsequence line diff of a (running) and b
// (pasted); callers bound len(a)*len(b) by maxDiffCells.
func diffLines(a, b []string) []diffLine {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, diffLine{"=", a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, diffLine{"-", a[i]})
			i++
		default:
			out = append(out, diffLine{"+", b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, diffLine{"-", a[i]})
	}
	for ; j < m; j++ {
		out = append(out, diffLine{"+", b[j]})
	}
	return out
}
