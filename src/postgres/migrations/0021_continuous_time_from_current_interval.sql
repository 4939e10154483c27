-- Version 21: a continuous spec's next time follows the interval it has
-- when it generates a unit.
--
-- The caller computed the next continuous time from the definition it had
-- read before the hand-out, and version 16's hand-out stored it: a
-- definition replaced in between (a new interval) set the next unit's time
-- by the interval it no longer had. Now coordinate_continuous reads the
-- interval under the spec's lock and computes the time itself.
--
-- Both are new functions, overloads without the caller's time, so that job
-- servers of the previous version, still running while the new one rolls
-- out, call what they know.

CREATE FUNCTION coordinate_continuous(p_spec bigint, p_now timestamptz, p_name bytea)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unit_id bigint;
BEGIN
    PERFORM 1 FROM work_spec s WHERE s.id = p_spec AND s.continuous
        AND (s.next_continuous IS NULL OR s.next_continuous <= p_now)
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- Checked again after the lock: a concurrent request may have made it.
    PERFORM 1 FROM work_spec s WHERE s.id = p_spec AND s.continuous
        AND (s.next_continuous IS NULL OR s.next_continuous <= p_now)
        AND (SELECT u.id FROM work_unit u WHERE u.work_spec_id = p_spec
                AND u.state = 0
                AND (u.not_before IS NULL OR u.not_before <= p_now)
                ORDER BY u.priority DESC, u.name LIMIT 1) IS NULL
        AND NOT EXISTS (SELECT 1 FROM work_unit u WHERE u.work_spec_id = p_spec
                AND u.state = 4 AND u.not_before <= p_now)
        AND NOT EXISTS (SELECT 1 FROM attempt a
                JOIN work_unit u ON u.id = a.work_unit_id AND u.active_attempt_id = a.id
                WHERE a.work_spec_id = p_spec AND a.status = 0);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO work_unit (work_spec_id, name, data, priority, not_before, active_attempt_id)
    VALUES (p_spec, p_name, '{}', 0, NULL, NULL)
    ON CONFLICT (work_spec_id, name) DO UPDATE SET name = EXCLUDED.name
    RETURNING id INTO unit_id;
    -- The interval is read under the lock, so a definition replaced since
    -- the caller read it counts; saturating at the latest storable instant.
    UPDATE work_spec
    SET next_continuous = LEAST(p_now + interval_us * interval '1 microsecond',
                                '9999-12-31 23:59:59.999999+00')
    WHERE id = p_spec;
    RETURN unit_id;
END $$;

CREATE FUNCTION coordinate_hand_out(p_spec bigint, p_worker bigint, p_wanted bigint,
    p_now timestamptz, p_expiration timestamptz, p_retry_data jsonb,
    p_continuous_name bytea, p_expire_namespace bigint)
RETURNS TABLE (attempt_id bigint, unit_id bigint, unit_name bytea)
LANGUAGE plpgsql AS $$
DECLARE
    spec record;
    wanted bigint := GREATEST(p_wanted, 1);
    running bigint;
    made record;
    taken bigint;
    returned bigint := 0;
    failed bigint[];
    generated bigint;
    generated_attempt bigint;
    generated_tries bigint;
    created_any boolean := false;
BEGIN
    IF p_expire_namespace IS NOT NULL THEN
        PERFORM coordinate_expire(p_expire_namespace, NULL, p_now);
    END IF;
    SELECT s.paused, s.weight, s.max_running, s.max_attempts_returned, s.max_retries
    INTO spec FROM work_spec s WHERE s.id = p_spec;
    IF NOT FOUND OR spec.paused OR spec.weight <= 0 THEN
        RETURN;
    END IF;
    IF spec.max_attempts_returned > 0 THEN
        wanted := LEAST(wanted, spec.max_attempts_returned);
    END IF;
    IF spec.max_running > 0 THEN
        PERFORM 1 FROM work_spec WHERE id = p_spec FOR NO KEY UPDATE;
        SELECT count(*) INTO running FROM attempt a
        JOIN work_unit u ON u.id = a.work_unit_id AND u.active_attempt_id = a.id
        WHERE a.work_spec_id = p_spec AND a.status = 0;
        wanted := LEAST(wanted, spec.max_running - running);
        IF wanted <= 0 THEN
            RETURN;
        END IF;
    END IF;
    LOOP
        taken := 0;
        failed := '{}';
        FOR made IN
            WITH picked AS (
                SELECT u.id, u.name, u.data, u.priority FROM work_unit u
                WHERE u.work_spec_id = p_spec AND u.state = 0
                  AND (u.not_before IS NULL OR u.not_before <= p_now)
                ORDER BY u.priority DESC, u.name
                LIMIT wanted
                FOR UPDATE SKIP LOCKED),
            created AS (
                INSERT INTO attempt (work_unit_id, work_spec_id, worker_id, status, data,
                    start_time, expiration_time, on_active_list)
                SELECT p.id, p_spec, p_worker, 0, p.data, p_now, p_expiration, true FROM picked p
                RETURNING id, work_unit_id),
            linked AS (
                UPDATE work_unit u SET active_attempt_id = c.id, state = 1 FROM created c
                WHERE u.id = c.work_unit_id)
            SELECT c.id AS attempt_id, u.id AS unit_id, u.name AS unit_name,
                CASE WHEN spec.max_retries > 0
                     THEN (SELECT count(*) FROM attempt x WHERE x.work_unit_id = u.id) + 1
                     ELSE 0 END AS tries
            FROM created c JOIN work_unit u ON u.id = c.work_unit_id
            ORDER BY u.priority DESC, u.name
        LOOP
            taken := taken + 1;
            IF spec.max_retries > 0 AND made.tries > spec.max_retries THEN
                failed := failed || made.attempt_id;
            ELSE
                attempt_id := made.attempt_id;
                unit_id := made.unit_id;
                unit_name := made.unit_name;
                returned := returned + 1;
                RETURN NEXT;
            END IF;
        END LOOP;
        IF taken = 0 AND NOT created_any AND p_continuous_name IS NOT NULL THEN
            generated := coordinate_continuous(p_spec, p_now, p_continuous_name);
            IF generated IS NOT NULL THEN
                taken := 1;
                WITH created AS (
                    INSERT INTO attempt (work_unit_id, work_spec_id, worker_id, status, data,
                        start_time, expiration_time, on_active_list)
                    SELECT u.id, p_spec, p_worker, 0, u.data, p_now, p_expiration, true
                    FROM work_unit u WHERE u.id = generated
                    RETURNING id, work_unit_id)
                UPDATE work_unit u SET active_attempt_id = c.id, state = 1 FROM created c
                WHERE u.id = c.work_unit_id
                RETURNING c.id, (SELECT count(*) FROM attempt x WHERE x.work_unit_id = u.id) + 1
                INTO generated_attempt, generated_tries;
                IF spec.max_retries > 0 AND generated_tries > spec.max_retries THEN
                    failed := failed || generated_attempt;
                ELSE
                    attempt_id := generated_attempt;
                    unit_id := generated;
                    unit_name := p_continuous_name;
                    returned := returned + 1;
                    RETURN NEXT;
                END IF;
            END IF;
        END IF;
        IF cardinality(failed) > 0 THEN
            UPDATE attempt SET status = 3, data = p_retry_data, end_time = p_now,
                on_active_list = false
            WHERE id = ANY (failed);
            UPDATE work_unit u SET state = 3 FROM attempt a
            WHERE a.id = ANY (failed) AND u.id = a.work_unit_id AND u.active_attempt_id = a.id;
        END IF;
        -- Every unit taken was over its retry limit and is now failed: take
        -- the next ones of the same spec.
        EXIT WHEN taken = 0 OR returned > 0;
        created_any := true;
    END LOOP;
    IF returned = 0 AND created_any THEN
        attempt_id := NULL;
        unit_id := NULL;
        unit_name := NULL;
        RETURN NEXT;
    END IF;
END $$;
