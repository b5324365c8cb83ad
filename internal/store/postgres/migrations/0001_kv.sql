-- kv holds the store.Store records: sealed secrets and metadata. Keys are
-- bytea so that they compare bytewise, as SQLite's BINARY collation does.
CREATE TABLE kv (
	key BYTEA NOT NULL PRIMARY KEY,
	val BYTEA NOT NULL
);
