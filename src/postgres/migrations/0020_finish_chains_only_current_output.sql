-- Version 20: a finish chains only the output its attempt still has.
--
-- Without finishing data, a finish whose next spec exists is two calls:
-- the first answers the stored data, whose `output` the caller parses, and
-- the second finishes with the parsed units if the stored data is still
-- what was parsed. Version 13 asked again only when the stored data still
-- had an `output`, so a renew that replaced the data with data without one
-- between the two calls let the finish chain the units of data the attempt
-- no longer had. Now any change to the stored data is answered again.
-- Otherwise as version 13.

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
        IF p_parsed IS DISTINCT FROM effective
                AND (p_parsed IS NOT NULL OR effective ? 'output') THEN
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
