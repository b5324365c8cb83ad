// Package audit is keywarden's write-ahead audit log: every call the gateway
// forwards is recorded durably before a byte goes upstream, and the record
// cannot be edited, removed, reordered or cut off without detection.
//
// The log is a directory of append-only segment files holding one JSON object
// per line. Each record carries the SHA-256 hash of the previous record
// (prev) and its own hash, so the records form a chain across segments. At
// regular intervals the log appends a checkpoint record signed with Ed25519;
// exported to an off-box witness file, checkpoints make truncation and forks
// detectable (see Verify and VerifyWithWitness). The format is documented in
// docs/audit.md.
//
// Durability: Append returns only once its record has been written and
// flushed with fdatasync. Concurrent appenders share one write and one flush
// per batch (group commit). When a write or flush fails, the log fails closed:
// the batch's appenders get an error and every later Append fails with
// ErrUnavailable until Reopen succeeds.
//
// Secrets: the log never stores secrets. Request bodies pass through Redact,
// and sensitive identifiers can be stored as keyed HMACs (Options.HashFields).
package audit
