package incident

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keywarden/keywarden/internal/audit"
)

// Evidence says where an export finds what it bundles.
type Evidence struct {
	// AuditDir is the audit log; AuditKey verifies its checkpoints (nil:
	// the chain is verified without signatures).
	AuditDir string
	AuditKey ed25519.PublicKey
	// ConfigDigest is the SHA-256 (hex) of the configuration in force.
	// The configuration itself is never bundled.
	ConfigDigest string
	// Before and After widen the audit window around the incident
	// (default 1h before it opened, 10m after it closed or now).
	Before, After time.Duration
	Now           time.Time
	// SignKey signs the manifest (see Sign). Export refuses to write an
	// unsigned bundle.
	SignKey ed25519.PrivateKey
}

// Manifest lists a bundle's files with their SHA-256.
type Manifest struct {
	Incident     string         `json:"incident"`
	Created      time.Time      `json:"created"`
	AuditFrom    time.Time      `json:"audit_from"`
	AuditTo      time.Time      `json:"audit_to"`
	AuditRecords int            `json:"audit_records"`
	Files        []ManifestFile `json:"files"`
}

// ManifestFile is one bundled file.
type ManifestFile struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// VerifyResult is the audit chain verification bundled with the records.
type VerifyResult struct {
	OK     bool   `json:"ok"`
	Report string `json:"report,omitempty"`
	Error  string `json:"error,omitempty"`
	// ExportError says why audit.jsonl is incomplete, if it is.
	ExportError string `json:"export_error,omitempty"`
}

// Export writes in's evidence bundle to w as a tar.gz: incident.json, the
// alerts of its timeline (alerts.json), the audit records of its window as
// stored (audit.jsonl, each line verifiable on its own hash), the result of
// verifying the whole audit chain (audit-verify.json), the configuration
// digest (config.sha256), manifest.json with the SHA-256 of every other
// file, manifest.sig (the Ed25519 signature of the manifest by
// ev.SignKey, see SignManifest) and evidence.pub (the public key, for
// convenience: pin it elsewhere to prove where a bundle came from; see
// VerifyBundle). Nothing in it is secret: audit records are redacted when written,
// alerts carry names and counts, and the configuration appears as a digest.
func Export(w io.Writer, in *Incident, ev Evidence) (Manifest, error) {
	if len(ev.SignKey) != ed25519.PrivateKeySize {
		return Manifest{}, errors.New("incident export: no evidence signing key: bundles are always signed")
	}
	if ev.Now.IsZero() {
		ev.Now = time.Now()
	}
	if ev.Before <= 0 {
		ev.Before = time.Hour
	}
	if ev.After <= 0 {
		ev.After = 10 * time.Minute
	}
	end := ev.Now
	if !in.Closed.IsZero() {
		end = in.Closed
	}
	from, to := in.Opened.Add(-ev.Before), end.Add(ev.After)
	man := Manifest{Incident: in.ID, Created: ev.Now.UTC(), AuditFrom: from.UTC(), AuditTo: to.UTC()}

	type file struct {
		name string
		body []byte
	}
	var files []file
	add := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("incident export %s: %w", name, err)
		}
		files = append(files, file{name, append(b, '\n')})
		return nil
	}
	if err := add("incident.json", in); err != nil {
		return man, err
	}
	alerts := []Entry{}
	for _, e := range in.Timeline {
		if e.Kind == KindAlert {
			alerts = append(alerts, e)
		}
	}
	if err := add("alerts.json", alerts); err != nil {
		return man, err
	}
	var recs bytes.Buffer
	var vr VerifyResult
	if ev.AuditDir != "" {
		// A damaged log is evidence too: the bundle is still written, and
		// says what could not be read or verified.
		xerr := audit.ExportJSONL(&recs, ev.AuditDir, audit.Filter{From: from, To: to})
		man.AuditRecords = bytes.Count(recs.Bytes(), []byte{'\n'})
		rep, err := audit.Verify(ev.AuditDir, ev.AuditKey)
		vr = VerifyResult{OK: err == nil && xerr == nil, Report: rep.String()}
		if err != nil {
			vr.Error = err.Error()
		}
		if xerr != nil {
			vr.ExportError = xerr.Error()
		}
	} else {
		vr.Error = "no audit log given"
	}
	files = append(files, file{"audit.jsonl", recs.Bytes()})
	if err := add("audit-verify.json", vr); err != nil {
		return man, err
	}
	files = append(files, file{"config.sha256", []byte(orDash(ev.ConfigDigest) + "  keywarden configuration\n")})
	for _, f := range files {
		sum := sha256.Sum256(f.body)
		man.Files = append(man.Files, ManifestFile{Name: f.name, Size: len(f.body), SHA256: hex.EncodeToString(sum[:])})
	}
	if err := add("manifest.json", man); err != nil {
		return man, err
	}
	sig := SignManifest(ev.SignKey, files[len(files)-1].body)
	pub := ev.SignKey.Public().(ed25519.PublicKey)
	files = append(files, file{SignatureFile, []byte(base64.StdEncoding.EncodeToString(sig) + "\n")},
		file{PublicKeyFile, []byte(base64.StdEncoding.EncodeToString(pub) + "\n")})

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	dir := in.ID + "/"
	for _, f := range files {
		hdr := &tar.Header{Name: dir + f.name, Mode: 0o600, Size: int64(len(f.body)), ModTime: ev.Now.UTC(), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return man, fmt.Errorf("incident export: %w", err)
		}
		if _, err := tw.Write(f.body); err != nil {
			return man, fmt.Errorf("incident export: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return man, fmt.Errorf("incident export: %w", err)
	}
	if err := gz.Close(); err != nil {
		return man, fmt.Errorf("incident export: %w", err)
	}
	return man, nil
}
