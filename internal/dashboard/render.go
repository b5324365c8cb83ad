package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/keywarden/keywarden/internal/operator"
	"github.com/keywarden/keywarden/internal/posture"
)

// pageNames are the templates in templates/ that are whole pages; each is
// parsed with the layout and the shared partials.
var pageNames = []string{"login", "overview", "keys", "key", "clients", "issued", "policies", "policy",
	"audit", "record", "alerts", "panic", "incidents", "incident", "error"}

var funcs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format(time.DateOnly)
	},
	"badge": badge,
	"inc":   func(i int) int { return i + 1 },
	"sev":   func(s posture.Severity) string { return "sev-" + s.String() },
	"join": func(list []string) string {
		if len(list) == 0 {
			return "—"
		}
		return strings.Join(list, ", ")
	},
	"ms": func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) },
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/partials.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// view is what the layout renders around a page.
type view struct {
	Title     string
	Nav       string
	Operator  string
	Role      string
	CSRF      string
	Can       map[string]bool
	Sealed    string
	Incidents bool
	Data      any
}

// render writes page with data inside the layout.
func (h *Handler) render(c *call, status int, page, title, nav string, data any) {
	v := view{Title: title, Nav: nav, Operator: c.p.Name, Role: string(c.p.Role), CSRF: c.csrf, Can: map[string]bool{},
		Sealed: h.sealState(), Incidents: h.o.Incidents != nil, Data: data}
	for _, p := range operator.Permissions {
		v.Can[string(p)] = c.p.Name != "" && c.p.Can(p)
	}
	h.write(c.w, status, page, "layout.html", v)
}

// fragment writes one named template of page without the layout (htmx
// partial updates).
func (h *Handler) fragment(c *call, page, name string, data any) {
	h.write(c.w, http.StatusOK, page, name, data)
}

func (h *Handler) write(w http.ResponseWriter, status int, page, name string, data any) {
	var buf bytes.Buffer
	t, ok := h.pages[page]
	if !ok {
		h.log.Error("dashboard: no such page", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("dashboard: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (h *Handler) sealState() string {
	if h.o.Vault == nil {
		return "unknown"
	}
	if h.o.Vault.Sealed() {
		return "sealed"
	}
	return "unsealed"
}
