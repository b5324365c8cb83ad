package incident

import (
	"fmt"
	htmltemplate "html/template"
	"io"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
)

// CallSummary counts the gateway calls of one subject (a credential or an
// exchange key) to one endpoint with one decision in an incident's window.
type CallSummary struct {
	Subject  string    `json:"subject"`
	Decision string    `json:"decision"`
	Endpoint string    `json:"endpoint"`
	Count    int       `json:"count"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
}

// Calls reads the audit records of in's window (before its opening to
// after its closing, or now) and summarises the calls of its subjects:
// records whose "venue/client" or "venue/key" is one of in.Subjects.
func Calls(dir string, in *Incident, before, after time.Duration, now time.Time) ([]CallSummary, error) {
	if before <= 0 {
		before = time.Hour
	}
	if after <= 0 {
		after = 10 * time.Minute
	}
	to := now
	if !in.Closed.IsZero() {
		to = in.Closed.Add(after)
	}
	f := audit.Filter{From: in.Opened.Add(-before), To: to, Types: []audit.Type{audit.TypeIntent, audit.TypeDenied}}
	idx := map[[3]string]int{}
	var out []CallSummary
	for r, err := range audit.Search(dir, f) {
		if err != nil {
			return out, fmt.Errorf("incident calls: %w", err)
		}
		it := r.Intent
		if it == nil {
			continue
		}
		subject := ""
		for _, s := range []string{it.Venue + "/" + it.Client, it.Venue + "/" + it.Key} {
			if slices.Contains(in.Subjects, s) {
				subject = s
				break
			}
		}
		if subject == "" {
			continue
		}
		endpoint := it.Call.Endpoint
		if endpoint == "" {
			endpoint = it.Method + " " + it.Path
		}
		k := [3]string{subject, it.Decision, endpoint}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, CallSummary{Subject: subject, Decision: it.Decision, Endpoint: endpoint, First: r.Time})
		}
		out[i].Count++
		out[i].Last = r.Time
	}
	slices.SortStableFunc(out, func(a, b CallSummary) int {
		return strings.Compare(a.Subject+"\x00"+a.Decision+"\x00"+a.Endpoint, b.Subject+"\x00"+b.Decision+"\x00"+b.Endpoint)
	})
	return out, nil
}

// reportData is what the post-mortem templates see.
type reportData struct {
	In    *Incident
	Calls []CallSummary
	Now   time.Time
}

// WriteReport writes a post-mortem draft of in as Markdown ("md") or HTML
// ("html"): summary, subjects, the timeline, the checklist with who did
// what, the affected calls, and the sections a team fills in by hand.
func WriteReport(w io.Writer, in *Incident, calls []CallSummary, format string, now time.Time) error {
	d := reportData{In: in, Calls: calls, Now: now.UTC()}
	switch format {
	case "md", "":
		return mdReport.Execute(w, d)
	case "html":
		return htmlReport.Execute(w, d)
	}
	return fmt.Errorf("report format %q: want md or html", format)
}

var reportFuncs = map[string]any{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"done": func(b bool) string {
		if b {
			return "x"
		}
		return " "
	},
	// cell makes s safe in a Markdown table cell and on one line.
	"cell": func(s string) string {
		s = strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ", "<", "&lt;", ">", "&gt;", "`", "'").Replace(s)
		return s
	},
}

var mdReport = template.Must(template.New("md").Funcs(reportFuncs).Parse(`# Post-mortem (draft): {{cell .In.Title}}

| | |
|---|---|
| Incident | {{cell .In.ID}} |
| Severity | {{cell .In.Severity}} |
| Status | {{cell .In.Status}} |
| Opened | {{ts .In.Opened}} |
| Closed | {{ts .In.Closed}} |
| Report drafted | {{ts .Now}} |

## Summary

{{if .In.Summary}}{{cell .In.Summary}}{{else}}_To be written._{{end}}

## Affected credentials and keys

{{range .In.Subjects}}- {{cell .}}
{{else}}_None recorded._
{{end}}
## Timeline

| Time | Kind | Actor | What |
|---|---|---|---|
{{range .In.Timeline}}| {{ts .Time}} | {{cell .Kind}} | {{cell .Actor}} | {{cell .Text}}{{if .Rule}} (rule {{cell .Rule}}){{end}} |
{{end}}
## Calls of the affected subjects

{{if .Calls}}| Subject | Decision | Endpoint | Calls | First | Last |
|---|---|---|---|---|---|
{{range .Calls}}| {{cell .Subject}} | {{cell .Decision}} | {{cell .Endpoint}} | {{.Count}} | {{ts .First}} | {{ts .Last}} |
{{end}}{{else}}_No audited calls of the affected subjects in the incident's window._
{{end}}
## Response checklist

{{range .In.Checklist}}- [{{done .Done}}] **{{cell .Phase}}**: {{cell .Text}}{{if .Done}} — {{cell .By}}, {{ts .At}}{{end}}
{{end}}
## Root cause

_To be written._

## What went well, what did not

_To be written._

## Actions

_To be written: owner, due date._
`))

var htmlReport = htmltemplate.Must(htmltemplate.New("html").Funcs(reportFuncs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Post-mortem (draft): {{.In.Title}}</title></head>
<body>
<h1>Post-mortem (draft): {{.In.Title}}</h1>
<table>
<tr><th>Incident</th><td>{{.In.ID}}</td></tr>
<tr><th>Severity</th><td>{{.In.Severity}}</td></tr>
<tr><th>Status</th><td>{{.In.Status}}</td></tr>
<tr><th>Opened</th><td>{{ts .In.Opened}}</td></tr>
<tr><th>Closed</th><td>{{ts .In.Closed}}</td></tr>
<tr><th>Report drafted</th><td>{{ts .Now}}</td></tr>
</table>
<h2>Summary</h2>
<p>{{if .In.Summary}}{{.In.Summary}}{{else}}<em>To be written.</em>{{end}}</p>
<h2>Affected credentials and keys</h2>
<ul>{{range .In.Subjects}}<li>{{.}}</li>{{else}}<li><em>None recorded.</em></li>{{end}}</ul>
<h2>Timeline</h2>
<table><tr><th>Time</th><th>Kind</th><th>Actor</th><th>What</th></tr>
{{range .In.Timeline}}<tr><td>{{ts .Time}}</td><td>{{.Kind}}</td><td>{{.Actor}}</td><td>{{.Text}}{{if .Rule}} (rule {{.Rule}}){{end}}</td></tr>
{{end}}</table>
<h2>Calls of the affected subjects</h2>
{{if .Calls}}<table><tr><th>Subject</th><th>Decision</th><th>Endpoint</th><th>Calls</th><th>First</th><th>Last</th></tr>
{{range .Calls}}<tr><td>{{.Subject}}</td><td>{{.Decision}}</td><td>{{.Endpoint}}</td><td>{{.Count}}</td><td>{{ts .First}}</td><td>{{ts .Last}}</td></tr>
{{end}}</table>{{else}}<p><em>No audited calls of the affected subjects in the incident's window.</em></p>{{end}}
<h2>Response checklist</h2>
<ul>{{range .In.Checklist}}<li>[{{done .Done}}] <strong>{{.Phase}}</strong>: {{.Text}}{{if .Done}} — {{.By}}, {{ts .At}}{{end}}</li>
{{end}}</ul>
<h2>Root cause</h2><p><em>To be written.</em></p>
<h2>What went well, what did not</h2><p><em>To be written.</em></p>
<h2>Actions</h2><p><em>To be written: owner, due date.</em></p>
</body></html>
`))
