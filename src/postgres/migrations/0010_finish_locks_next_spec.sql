-- Version 10: finish chains only into a spec that stays.
--
-- The next spec was read with the statement's snapshot, so a spec whose
-- destroy was in flight still looked present: the units added to it then
-- failed their foreign key once the destroy committed, and the whole finish
-- rolled back with Gone. Reading it FOR KEY SHARE waits for such a destroy
-- and skips a spec it deleted (the finish is then ordered after it, with no
-- spec to chain into); a spec read this way cannot go before the finish
-- commits. Otherwise as version 4.

CREATE OR REPLACE FUNCTION coordinate_finish(p_attempt bigint, p_now timestamptz, p_data jsonb,
    p_parsed jsonb, p_names bytea[], p_datas jsonb[], p_priorities double precision[],
    p_not_befores timestamptz[], OUT outcome smallint, OUT stored jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    cur record;
    next_id bigint;
    effective jsonb;
BEGIN
    SELECT * INTO cur FROM coordinate_lock_attempt(p_attempt);
    IF cur.unit_id IS NULL THEN
        outcome := 1;
        RETURN;
    END IF;
    IF NOT (cur.status IN (0, 3) OR (cur.status = 1 AND cur.active)) THEN
        outcome := 2;
        RETURN;
    END IF;
    IF cur.active THEN
        SELECT n.id INTO next_id FROM work_spec s
        JOIN work_spec n ON n.namespace_id = s.namespace_id AND n.name = s.next_work_spec_name
        WHERE s.id = cur.spec_id AND length(s.next_work_spec_name) > 0
        FOR KEY SHARE OF n;
    END IF;
    IF next_id IS NOT NULL AND p_data IS NULL THEN
        SELECT data INTO effective FROM attempt WHERE id = p_attempt;
        IF effective ? 'output' AND (p_parsed IS NULL OR p_parsed <> effective) THEN
            outcome := 4;
            stored := effective;
            RETURN;
        END IF;
    END IF;
    UPDATE attempt SET status = 2, end_time = p_now, data = COALESCE(p_data, data),
        on_active_list = false
    WHERE id = p_attempt;
    IF cur.active THEN
        UPDATE work_unit SET state = 2 WHERE id = cur.unit_id;
    END IF;
    IF next_id IS NOT NULL THEN
        FOR i IN 1 .. COALESCE(cardinality(p_names), 0) LOOP
            PERFORM coordinate_upsert_unit(next_id, p_names[i], p_datas[i], p_priorities[i],
                                           p_not_befores[i]);
        END LOOP;
    END IF;
    outcome := 0;
END $$;
