-- Policy edits made through the admin API (policies/overlay/...) reach every
-- replica like credential changes: the store trigger bumps 'policies' and
-- notifies, and each replica compiles the policies again.
INSERT INTO cluster_state (name, gen, value, origin) VALUES ('policies', 0, '', '');

CREATE OR REPLACE FUNCTION keywarden_kv_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k BYTEA;
	subject TEXT;
BEGIN
	IF TG_OP = 'DELETE' THEN k := OLD.key; ELSE k := NEW.key; END IF;
	IF substring(k FROM 1 FOR 8) = 'clients/'::bytea THEN
		subject := 'clients';
	ELSIF substring(k FROM 1 FOR 11) = 'vault/keys/'::bytea THEN
		IF TG_OP = 'UPDATE' AND keywarden_key_state(OLD.val) = keywarden_key_state(NEW.val) THEN
			RETURN NULL;
		END IF;
		subject := 'keys';
	ELSIF substring(k FROM 1 FOR 17) = 'policies/overlay/'::bytea THEN
		subject := 'policies';
	ELSE
		RETURN NULL;
	END IF;
	UPDATE cluster_state SET gen = gen + 1, origin = 'store', changed = now() WHERE name = subject;
	PERFORM pg_notify('keywarden_cluster', subject);
	RETURN NULL;
END;
$$;
