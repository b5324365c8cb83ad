-- operator_sessions holds admin API sessions. id is the SHA-256 digest of
-- the session token, never the token. Times are Unix nanoseconds (UTC).
CREATE TABLE operator_sessions (
	id TEXT NOT NULL PRIMARY KEY,
	operator TEXT NOT NULL,
	created INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	step_up INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX operator_sessions_operator ON operator_sessions (operator);
