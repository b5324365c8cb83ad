-- cluster_state holds the state every replica follows. gen grows on every
-- change, so a replica that missed a notification sees the change on its
-- next poll.
CREATE TABLE cluster_state (
	name TEXT NOT NULL PRIMARY KEY,
	gen BIGINT NOT NULL,
	value TEXT NOT NULL,
	origin TEXT NOT NULL,
	changed TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO cluster_state (name, gen, value, origin) VALUES
	('clients', 0, '', ''),
	('gateway', 0, 'running', '');
