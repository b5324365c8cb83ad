package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteText writes one line per finding and a summary. Secrets appear
// only redacted.
func (r *Report) WriteText(w io.Writer) error {
	for _, f := range r.Findings {
		loc := fmt.Sprintf("%s:%d:%d", f.Source, f.Line, f.Column)
		if f.Commit != "" {
			loc = shortCommit(f.Commit) + ":" + loc
		}
		venue := ""
		if f.Venue != "" {
			venue = f.Venue + " "
		}
		if _, err := fmt.Fprintf(w, "%s: %s %s%s %s [%s]\n", loc, strings.ToUpper(string(f.Severity)), venue, f.What, f.Redacted, f.Rule); err != nil {
			return err
		}
		if f.Live != nil {
			if _, err := fmt.Fprintf(w, "    this is your live %s %s (%s)\n", liveNoun(f.Live), f.Live.Owner, f.Live.Part); err != nil {
				return err
			}
		}
	}
	for _, s := range r.Skipped {
		if _, err := fmt.Fprintf(w, "skipped %s: %s\n", s.Source, s.Reason); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d finding(s) in %d file(s), %d bytes scanned\n", len(r.Findings), r.Files, r.Bytes)
	return err
}

func liveNoun(l *Live) string {
	if l.Kind == "client" {
		return "client credential"
	}
	return "key"
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// SARIF 2.1.0, the subset code-scanning services read.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	ShortDescription sarifText      `json:"shortDescription"`
	DefaultConfig    sarifRuleLevel `json:"defaultConfiguration"`
}

type sarifRuleLevel struct {
	Level string `json:"level"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
}

func sarifLevel(s Severity) string {
	switch s {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	}
	return "note"
}

// WriteSARIF writes the report as a SARIF 2.1.0 log with one run.
func (r *Report) WriteSARIF(w io.Writer) error {
	index := map[string]int{}
	var rulesOut []sarifRule
	results := make([]sarifResult, 0, len(r.Findings))
	ids := make([]string, 0)
	byID := map[string]Finding{}
	for _, f := range r.Findings {
		if _, ok := byID[f.Rule]; !ok {
			ids = append(ids, f.Rule)
			byID[f.Rule] = f
		}
	}
	sort.Strings(ids)
	for i, id := range ids {
		f := byID[id]
		index[id] = i
		desc := f.What
		if f.Venue != "" {
			desc = f.Venue + " " + f.What
		}
		rulesOut = append(rulesOut, sarifRule{ID: id, ShortDescription: sarifText{Text: "Leaked " + desc},
			DefaultConfig: sarifRuleLevel{Level: sarifLevel(f.Severity)}})
	}
	for _, f := range r.Findings {
		msg := fmt.Sprintf("Leaked %s %s: %s", f.Venue, f.What, f.Redacted)
		if f.Venue == "" {
			msg = fmt.Sprintf("Leaked %s: %s", f.What, f.Redacted)
		}
		if f.Live != nil {
			msg += fmt.Sprintf(". This is your live %s %s (%s): revoke it.", liveNoun(f.Live), f.Live.Owner, f.Live.Part)
		}
		uri := f.Source
		if i := strings.IndexByte(uri, '!'); i >= 0 {
			uri = uri[:i] // the archive; the member is in the message
			msg += " (in " + f.Source + ")"
		}
		props := map[string]any{"severity": string(f.Severity)}
		if f.Commit != "" {
			props["commit"] = f.Commit
		}
		results = append(results, sarifResult{
			RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity), Message: sarifText{Text: msg},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: strings.TrimPrefix(uri, "./")},
				Region:           sarifRegion{StartLine: max(1, f.Line), StartColumn: max(1, f.Column)},
			}}},
			PartialFingerprints: map[string]string{"keywardenFinding/v1": f.ID},
			Properties:          props,
		})
	}
	if rulesOut == nil {
		rulesOut = []sarifRule{}
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: "keywarden", InformationURI: "https://github.com/keywarden/keywarden", Rules: rulesOut}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}
