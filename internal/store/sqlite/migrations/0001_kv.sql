-- kv holds the store.Store records: sealed secrets and metadata.
CREATE TABLE kv (
	key TEXT NOT NULL PRIMARY KEY,
	val BLOB NOT NULL
) WITHOUT ROWID;
