package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/keywarden/keywarden/internal/exchange"
)

// Type is the kind of a record.
type Type string

// Record types. TypeIntent and TypeDenied carry an Intent, TypeOutcome an
// Outcome, TypeEvent an Event; the log itself writes TypeCheckpoint.
const (
	TypeIntent     Type = "intent"
	TypeOutcome    Type = "outcome"
	TypeDenied     Type = "denied"
	TypeEvent      Type = "event"
	TypeCheckpoint Type = "checkpoint"
)

// Decisions an Intent can carry.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// genesisPrev is the prev of the very first record of a log.
const genesisPrev = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one line of the log. Callers of Append fill Type (or leave it to
// be inferred), RequestID and exactly one payload; the log assigns Seq, Time,
// Prev and Hash. The JSON field order below is the on-disk order.
type Record struct {
	Seq        uint64      `json:"seq"`
	Time       time.Time   `json:"time"`
	Type       Type        `json:"type"`
	RequestID  string      `json:"request_id,omitempty"`
	Intent     *Intent     `json:"intent,omitempty"`
	Outcome    *Outcome    `json:"outcome,omitempty"`
	Event      *Event      `json:"event,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Prev       string      `json:"prev"`
	Hash       string      `json:"hash"`
}

// Intent is what the gateway is about to do (Decision "allow") or refused to
// do (Decision "deny") for one request. Body is the request body with every
// secret removed; Append passes it through Redact again regardless.
type Intent struct {
	RequestID string        `json:"-"` // stored as the record's request_id
	Client    string        `json:"client,omitempty"`
	Key       string        `json:"key,omitempty"` // exchange key name
	Venue     string        `json:"venue,omitempty"`
	Method    string        `json:"method,omitempty"`
	Path      string        `json:"path,omitempty"`
	SourceIP  string        `json:"source_ip,omitempty"`
	Call      exchange.Call `json:"-"` // stored as "call", see callJSON
	Decision  string        `json:"decision"`
	Rule      string        `json:"rule,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Body      string        `json:"body,omitempty"`
}

// Outcome is what happened to a forwarded request.
type Outcome struct {
	RequestID     string `json:"-"` // stored as the record's request_id
	Status        int    `json:"status"`
	VenueOrderID  string `json:"venue_order_id,omitempty"`
	LatencyMicros int64  `json:"latency_micros"`
	Error         string `json:"error,omitempty"`
}

// Event is an operator or system action (key rotation, unseal, panic, ...).
type Event struct {
	Kind   string            `json:"kind"`
	Actor  string            `json:"actor,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`
}

// Checkpoint is the payload of a checkpoint record: a signed statement that
// the log's first Count records end in the record whose hash is Head.
type Checkpoint struct {
	Count     uint64 `json:"count"`
	Head      string `json:"head"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // base64 Ed25519 over checkpointNote
	// Root is the hex RFC 6962 Merkle tree hash over the hashes of records
	// 1..Count, Tree the compact range of that tree (hex, largest subtree
	// first) and NoteSig the C2SP signature of its checkpoint note: base64
	// of the 4-byte key hash and the Ed25519 signature (see tree.go). Empty in logs written before them.
	Root    string   `json:"root,omitempty"`
	Tree    []string `json:"tree,omitempty"`
	NoteSig string   `json:"note_sig,omitempty"`
}

// Receipt acknowledges a durable record.
type Receipt struct {
	Seq  uint64
	Hash string
}

// callJSON is exchange.Call in the log's lower_snake spelling, so the record
// format does not depend on Go field names.
type callJSON struct {
	Venue    string         `json:"venue,omitempty"`
	Method   string         `json:"method,omitempty"`
	Path     string         `json:"path,omitempty"`
	Endpoint string         `json:"endpoint,omitempty"`
	Scope    exchange.Scope `json:"scope,omitempty"`
	Orders   []orderJSON    `json:"orders,omitempty"`
	Transfer *transferJSON  `json:"transfer,omitempty"`
}

type orderJSON struct {
	Action        exchange.Action `json:"action,omitempty"`
	Symbol        string          `json:"symbol,omitempty"`
	Side          exchange.Side   `json:"side,omitempty"`
	Type          string          `json:"type,omitempty"`
	Quantity      float64         `json:"quantity,omitempty"`
	Price         float64         `json:"price,omitempty"`
	QuoteQuantity float64         `json:"quote_quantity,omitempty"`
	Notional      float64         `json:"notional,omitempty"`
	Contracts     bool            `json:"contracts,omitempty"`
	ClientOrderID string          `json:"client_order_id,omitempty"`
	ReduceOnly    bool            `json:"reduce_only,omitempty"`
}

type transferJSON struct {
	Asset       string  `json:"asset,omitempty"`
	Amount      float64 `json:"amount,omitempty"`
	Address     string  `json:"address,omitempty"`
	Network     string  `json:"network,omitempty"`
	Memo        string  `json:"memo,omitempty"`
	Destination string  `json:"destination,omitempty"`
}

// intentJSON is Intent with Call in its stored spelling, in field order.
type intentJSON struct {
	Client   string    `json:"client,omitempty"`
	Key      string    `json:"key,omitempty"`
	Venue    string    `json:"venue,omitempty"`
	Method   string    `json:"method,omitempty"`
	Path     string    `json:"path,omitempty"`
	SourceIP string    `json:"source_ip,omitempty"`
	Call     *callJSON `json:"call,omitempty"`
	Decision string    `json:"decision"`
	Rule     string    `json:"rule,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Body     string    `json:"body,omitempty"`
}

// MarshalJSON encodes the intent with its call in the stored spelling.
func (in Intent) MarshalJSON() ([]byte, error) {
	return json.Marshal(in.stored())
}

// stored returns the intent in its stored spelling.
func (in *Intent) stored() intentJSON {
	j := intentJSON{
		Client: in.Client, Key: in.Key, Venue: in.Venue, Method: in.Method,
		Path: in.Path, SourceIP: in.SourceIP, Decision: in.Decision,
		Rule: in.Rule, Reason: in.Reason, Body: in.Body,
	}
	if !callIsZero(in.Call) {
		c := callJSON{
			Venue: in.Call.Venue, Method: in.Call.Method, Path: in.Call.Path,
			Endpoint: in.Call.Endpoint, Scope: in.Call.Scope,
		}
		for _, o := range in.Call.Orders {
			c.Orders = append(c.Orders, orderJSON{o.Action, o.Symbol, o.Side, o.Type, o.Quantity, o.Price,
				o.QuoteQuantity, o.Notional, o.Contracts, o.ClientOrderID, o.ReduceOnly})
		}
		if t := in.Call.Transfer; t != nil {
			tj := transferJSON(*t)
			c.Transfer = &tj
		}
		j.Call = &c
	}
	return j
}

// UnmarshalJSON decodes an intent written by MarshalJSON, rejecting unknown
// fields.
func (in *Intent) UnmarshalJSON(b []byte) error {
	var j intentJSON
	if err := strictUnmarshal(b, &j); err != nil {
		return err
	}
	*in = Intent{
		RequestID: in.RequestID,
		Client:    j.Client, Key: j.Key, Venue: j.Venue, Method: j.Method,
		Path: j.Path, SourceIP: j.SourceIP, Decision: j.Decision,
		Rule: j.Rule, Reason: j.Reason, Body: j.Body,
	}
	if c := j.Call; c != nil {
		in.Call = exchange.Call{
			Venue: c.Venue, Method: c.Method, Path: c.Path,
			Endpoint: c.Endpoint, Scope: c.Scope,
		}
		for _, o := range c.Orders {
			in.Call.Orders = append(in.Call.Orders, exchange.Order{Action: o.Action, Symbol: o.Symbol, Side: o.Side,
				Type: o.Type, Quantity: o.Quantity, Price: o.Price, QuoteQuantity: o.QuoteQuantity, Notional: o.Notional,
				Contracts: o.Contracts, ClientOrderID: o.ClientOrderID, ReduceOnly: o.ReduceOnly})
		}
		if c.Transfer != nil {
			t := exchange.Transfer(*c.Transfer)
			in.Call.Transfer = &t
		}
	}
	return nil
}

func callIsZero(c exchange.Call) bool {
	return c.Venue == "" && c.Method == "" && c.Path == "" && c.Endpoint == "" &&
		c.Scope == "" && len(c.Orders) == 0 && c.Transfer == nil
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after object")
	}
	return nil
}

// payload returns the JSON member name and value of r's single payload after
// checking that it matches r.Type.
func (r *Record) payload() (string, any, error) {
	n := 0
	var name string
	var v any
	if r.Intent != nil {
		n, name, v = n+1, "intent", r.Intent
	}
	if r.Outcome != nil {
		n, name, v = n+1, "outcome", r.Outcome
	}
	if r.Event != nil {
		n, name, v = n+1, "event", r.Event
	}
	if r.Checkpoint != nil {
		n, name, v = n+1, "checkpoint", r.Checkpoint
	}
	if n != 1 {
		return "", nil, fmt.Errorf("record has %d payloads, want 1", n)
	}
	want := map[Type]string{
		TypeIntent: "intent", TypeDenied: "intent", TypeOutcome: "outcome",
		TypeEvent: "event", TypeCheckpoint: "checkpoint",
	}[r.Type]
	if want != name {
		return "", nil, fmt.Errorf("record type %q does not match its %s payload", r.Type, name)
	}
	return name, v, nil
}

// encodeBody returns the record's middle fragment, from "type" through the
// payload, without leading or trailing comma:
//
//	"type":"intent","request_id":"r1","intent":{...}
func encodeBody(r *Record) ([]byte, error) {
	name, v, err := r.payload()
	if err != nil {
		return nil, err
	}
	size := 384
	if r.Intent != nil {
		size = intentSize(r.Intent)
	}
	b := make([]byte, 0, 64+len(r.RequestID)+size)
	b = append(b, `"type":`...)
	b = appendJSONString(b, string(r.Type))
	if r.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, r.RequestID)
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	switch {
	case r.Intent != nil:
		return appendIntent(b, r.Intent)
	case r.Outcome != nil:
		return appendOutcome(b, r.Outcome), nil
	}
	p, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, p...), nil
}

// timeFormat is the record time format: RFC 3339 with nanoseconds, UTC,
// trailing zeros of the fraction dropped.
const timeFormat = time.RFC3339Nano

// appendLine appends the full line (with newline) for a record to dst and
// returns it with the record's hash. The hash is SHA-256 over the line's
// bytes up to and including the prev member, closed with "}":
//
//	{"seq":N,"time":"T",<body>,"prev":"P"}
//
// The stored line is the same bytes with `,"hash":"H"` inserted before the
// closing brace.
func appendLine(dst []byte, seq uint64, t time.Time, body []byte, prev string) ([]byte, string) {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, timeFormat)
	dst = append(dst, `",`...)
	dst = append(dst, body...)
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `"}`...)
	sum := sha256.Sum256(dst[start:])
	dst = dst[:len(dst)-1]
	dst = append(dst, `,"hash":"`...)
	var h [64]byte
	hex.Encode(h[:], sum[:])
	dst = append(dst, h[:]...)
	dst = append(dst, `"}`...)
	dst = append(dst, '\n')
	return dst, string(h[:])
}

// hashSuffixLen is len(`,"hash":"` + 64 hex + `"}`).
const hashSuffixLen = 9 + 64 + 2

// parseLine parses one stored line (without its newline), checks that its
// hash covers its bytes, that it is well-formed and unambiguous (no unknown
// or duplicate fields), and returns the record.
func parseLine(line []byte) (Record, error) {
	var r Record
	n := len(line)
	if n < hashSuffixLen+2 || line[0] != '{' || !bytes.HasPrefix(line[n-hashSuffixLen:], []byte(`,"hash":"`)) ||
		!bytes.HasSuffix(line, []byte(`"}`)) {
		return r, errors.New("malformed record line")
	}
	hashHex := line[n-hashSuffixLen+9 : n-2]
	var want [32]byte
	if _, err := hex.Decode(want[:], hashHex); err != nil || !isLowerHex(hashHex) {
		return r, errors.New("malformed record hash")
	}
	h := sha256.New()
	h.Write(line[:n-hashSuffixLen])
	h.Write([]byte{'}'})
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return r, errors.New("record hash does not match its contents")
	}
	if err := strictUnmarshal(line, &r); err != nil {
		return r, fmt.Errorf("malformed record: %w", err)
	}
	// The line must be exactly the canonical encoding of what it says, so a
	// reader can never see something other than what was hashed (duplicate
	// members, odd escapes or spacing are all rejected here).
	canon, err := json.Marshal(r)
	if err != nil || !bytes.Equal(canon, line) {
		return r, errors.New("record is not in canonical form (duplicate or non-canonical fields)")
	}
	if _, _, err := r.payload(); err != nil {
		return r, err
	}
	if r.Intent != nil {
		r.Intent.RequestID = r.RequestID
	}
	if r.Outcome != nil {
		r.Outcome.RequestID = r.RequestID
	}
	if len(r.Prev) != 64 || !isLowerHex([]byte(r.Prev)) {
		return r, errors.New("malformed prev hash")
	}
	if r.Seq == 0 {
		return r, errors.New("record has seq 0")
	}
	return r, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
