-- Every write to a client credential, and every change of an exchange
-- key's state (disabled, secret rotated, removed), bumps its subject in
-- cluster_state and notifies, whoever wrote it: a replica, or a keywarden
-- command run against the database directly.
INSERT INTO cluster_state (name, gen, value, origin) VALUES ('keys', 0, '', '');

-- keywarden_key_state is the part of a key's metadata that replicas cache
-- against. Metadata that does not parse counts as changed.
CREATE FUNCTION keywarden_key_state(v BYTEA) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	j JSONB;
BEGIN
	j := convert_from(v, 'UTF8')::jsonb;
	RETURN coalesce(j->>'disabled', '') || ' ' || coalesce(j->>'secret_version', '');
EXCEPTION WHEN others THEN
	RETURN encode(sha256(v), 'hex');
END;
$$;

CREATE FUNCTION keywarden_kv_notify() RETURNS trigger LANGUAGE plpgsql AS $$
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
	ELSE
		RETURN NULL;
	END IF;
	UPDATE cluster_state SET gen = gen + 1, origin = 'store', changed = now() WHERE name = subject;
	PERFORM pg_notify('keywarden_cluster', subject);
	RETURN NULL;
END;
$$;

CREATE TRIGGER keywarden_kv_notify AFTER INSERT OR UPDATE OR DELETE ON kv
	FOR EACH ROW EXECUTE FUNCTION keywarden_kv_notify();
