-- cluster_window_use holds one row per reserved use of a rolling policy
-- window, shared by every replica. A row counts while expires > the check's
-- time; expired rows are deleted by the next reservation on their window.
CREATE TABLE cluster_window_use (
	id BIGSERIAL PRIMARY KEY,
	window_key TEXT NOT NULL,
	expires TIMESTAMPTZ NOT NULL,
	notional BIGINT NOT NULL,
	orders INTEGER NOT NULL
);
CREATE INDEX cluster_window_use_key ON cluster_window_use (window_key, expires);

-- keywarden_window_reserve reserves one call's use of several windows, all
-- or none, in one statement. Each window's advisory lock (class 27511,
-- "kw") is taken in ascending order, so concurrent reservations on
-- overlapping windows serialise without deadlock. It returns refused = 0
-- and the new rows' ids, or the 1-based index of a refusing window and
-- what that window had used.
CREATE FUNCTION keywarden_window_reserve(
	p_keys TEXT[], p_expires TIMESTAMPTZ[], p_max_notional BIGINT[], p_max_orders INTEGER[],
	p_notional BIGINT[], p_orders INTEGER[], p_at TIMESTAMPTZ,
	OUT refused INTEGER, OUT used_notional BIGINT, OUT used_orders BIGINT, OUT ids BIGINT[])
LANGUAGE plpgsql AS $$
DECLARE
	i INTEGER;
	n NUMERIC;
	o BIGINT;
	new_id BIGINT;
BEGIN
	PERFORM pg_advisory_xact_lock(27511, h)
		FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(p_keys) AS k ORDER BY 1) AS locks;
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		DELETE FROM cluster_window_use WHERE window_key = p_keys[i] AND expires <= p_at;
		SELECT coalesce(sum(notional), 0), coalesce(sum(orders), 0) INTO n, o
			FROM cluster_window_use WHERE window_key = p_keys[i] AND expires > p_at;
		IF (p_max_notional[i] > 0 AND n + p_notional[i] > p_max_notional[i])
			OR (p_max_orders[i] > 0 AND o + p_orders[i] > p_max_orders[i]) THEN
			refused := i;
			used_notional := least(n, 9223372036854775807);
			used_orders := o;
			RETURN;
		END IF;
	END LOOP;
	refused := 0;
	ids := '{}';
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		INSERT INTO cluster_window_use (window_key, expires, notional, orders)
			VALUES (p_keys[i], p_expires[i], p_notional[i], p_orders[i]) RETURNING id INTO new_id;
		ids := ids || new_id;
	END LOOP;
END;
$$;
