-- Version 13: finish locks the next spec only to chain units into it.
--
-- Version 10 read the next spec FOR KEY SHARE on every finish of an
-- active attempt whose spec names one, units to chain or not: a row lock
-- taken by every concurrent finisher of such a spec on one row, and a
-- wait (with a deadlock when the destroy already waits for the finished
-- unit) behind a destroy of the next spec although nothing would be added
-- to it. Now the spec is read plainly, and locked, and checked to still
-- exist, only before units are added to it. Otherwise as version 10.

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
        WHERE s.id = cur.spec_id AND length(s.next_work_spec_name) > 0;
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
    IF next_id IS NOT NULL AND COALESCE(cardinality(p_names), 0) > 0 THEN
        -- Waits for a destroy of the spec in flight and skips the spec if
        -- it deleted it; holds it otherwise until this finish commits.
        SELECT id INTO next_id FROM work_spec WHERE id = next_id FOR KEY SHARE;
    END IF;
    IF next_id IS NOT NULL THEN
        FOR i IN 1 .. COALESCE(cardinality(p_names), 0) LOOP
            PERFORM coordinate_upsert_unit(next_id, p_names[i], p_datas[i], p_priorities[i],
                                           p_not_befores[i]);
        END LOOP;
    END IF;
    outcome := 0;
END $$;
