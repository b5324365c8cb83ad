package exchange

import (
	"encoding/json"
	"time"
)

// WSMessage is one request a bot sent over a venue's WebSocket API, as
// keywarden reads it before deciding what to do with it.
type WSMessage struct {
	// ID is the bot's request id as raw JSON, echoed in answers.
	ID json.RawMessage
	// Op is the venue's method or op name (order.place, login, ...).
	Op string
	// ClientKey is the credential id the message claims ("" for none).
	ClientKey string
	// Signed says the message carries its own signature, checked per
	// message; Logon says it authenticates the whole session.
	Signed, Logon bool
	// Public says it needs no credential at all.
	Public bool
	// Signature is the bot's signature on a Signed or Logon message, which
	// the proxy remembers to refuse replays however the JSON is spaced.
	Signature string
}

// WSAPI is a venue's WebSocket API as the WebSocket proxy handles it: it
// verifies a bot's signed or logon message with the client credential,
// describes it as the REST equivalent would be described (same scopes and
// order fields, so the same policy applies), re-signs it with the exchange
// key, and answers refusals in the venue's own shape. Implementations are
// safe for concurrent use.
type WSAPI interface {
	// Parse reads one bot message. Errors are *Error.
	Parse(msg []byte) (*WSMessage, error)
	// Verify checks a Signed or Logon message's signature and time window
	// against the client credential. Errors are *Error.
	Verify(msg []byte, m *WSMessage, client *Credential, now time.Time) error
	// Describe says what the message does. Errors are *Error.
	Describe(msg []byte, m *WSMessage) (Call, error)
	// Sign returns the message to send upstream: the bot's auth material
	// replaced by the exchange key's, for Signed and Logon messages; the
	// message unchanged otherwise.
	Sign(msg []byte, m *WSMessage, key *Credential, now time.Time) ([]byte, error)
	// Refuse is the venue's error answer to m.
	Refuse(m *WSMessage, e *Error) []byte
	// Answer reads an upstream message as the answer to a request: its id
	// and whether it reports success. ok is false for stream events.
	Answer(msg []byte) (id json.RawMessage, success, ok bool)
}
