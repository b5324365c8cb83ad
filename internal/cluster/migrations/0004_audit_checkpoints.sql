-- cluster_audit_checkpoint collects every replica's signed audit
-- checkpoints (witness lines), so that each replica's log can be checked
-- against what it had written before (truncation, forks) from anywhere.
CREATE TABLE cluster_audit_checkpoint (
	replica TEXT NOT NULL,
	count BIGINT NOT NULL,
	line TEXT NOT NULL,
	collected TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (replica, count)
);
