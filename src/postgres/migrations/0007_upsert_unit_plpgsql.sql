-- Version 7: the unit upsert as a PL/pgSQL function.
--
-- A SQL-language function that cannot be inlined (this one writes) has its
-- body parsed and planned again on every call; PL/pgSQL keeps the plan of
-- its statement for the connection's life. The statement is the same, so
-- are its effects: a unit is created, or its data and meta replaced, and a
-- unit whose active attempt is Finished or Failed (state 2 or 3) loses the
-- link (it runs again). ON CONFLICT reads the state of the unit's latest
-- version under its lock, so a concurrent finish either completes first
-- (and is seen) or waits for this. Answers the unit's id.

CREATE OR REPLACE FUNCTION coordinate_upsert_unit(p_spec bigint, p_name bytea, p_data jsonb,
    p_priority double precision, p_not_before timestamptz)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unit bigint;
BEGIN
    INSERT INTO work_unit AS u (work_spec_id, name, data, priority, not_before,
        active_attempt_id, state)
    VALUES (p_spec, p_name, p_data, p_priority, p_not_before, NULL, 0)
    ON CONFLICT (work_spec_id, name) DO UPDATE SET data = EXCLUDED.data,
        priority = EXCLUDED.priority, not_before = EXCLUDED.not_before,
        active_attempt_id = CASE WHEN u.state IN (2, 3) THEN NULL ELSE u.active_attempt_id END,
        state = CASE WHEN u.state IN (2, 3) THEN 0 ELSE u.state END
    RETURNING id INTO unit;
    RETURN unit;
END $$;
