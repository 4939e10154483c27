-- Version 24: a change of a spec's definition waits for its hand-outs.
--
-- A hand-out from a spec without max_running locks nothing of the spec, so
-- that hand-outs of one spec run side by side. A definition that set a
-- max_running meanwhile committed while such a hand-out, which had read
-- none, was still taking units; a hand-out after the change counted the
-- running units without the first one's, not yet committed, and took up to
-- the whole limit more. Hand-outs now hold a shared advisory lock of their
-- spec, and a change of the spec's definition (set_work_spec, set_data,
-- set_meta) takes it exclusively before it locks the spec's row: it waits
-- for the hand-outs in progress, and the hand-outs after it read the new
-- limits. set_work_spec's upsert moves here, to look the spec up and lock
-- it in the same round trip.
--
-- The lock is keyed by the spec's id, its low 31 bits under the class
-- 0x73706563 ("spec" in ASCII); two specs sharing a key only wait for each
-- other. The hand-out keeps its signature: job servers of the previous
-- version, still running while this one rolls out, call it as before.

-- Taken by a change of spec p_spec's definition before it locks the spec.
CREATE OR REPLACE FUNCTION coordinate_lock_spec_definition(p_spec bigint)
RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(1936745827, (p_spec & 2147483647)::integer);
$$;

-- set_work_spec: stores spec p_name of namespace p_namespace with this
-- definition and the columns derived from it, new or replacing the
-- definition of the spec of that name, under its definition lock; answers
-- the spec's id. A spec of that name created by another call between the
-- look-up and the insert is locked after its row: the one order that can
-- meet a hand-out of it in a deadlock, which PostgreSQL breaks and the
-- caller runs again.
CREATE OR REPLACE FUNCTION coordinate_define_spec(p_namespace bigint, p_name bytea,
    p_definition jsonb, p_priority bigint, p_weight bigint, p_paused boolean,
    p_continuous boolean, p_can_be_continuous boolean, p_min_memory_gb double precision,
    p_interval_us bigint, p_max_running bigint, p_max_attempts_returned bigint,
    p_max_retries bigint, p_next_work_spec_name bytea, p_runtime bytea)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    locked bigint;
    defined bigint;
BEGIN
    SELECT id INTO locked FROM work_spec WHERE namespace_id = p_namespace AND name = p_name;
    IF locked IS NOT NULL THEN
        PERFORM coordinate_lock_spec_definition(locked);
    END IF;
    INSERT INTO work_spec (namespace_id, name, definition, priority, weight, paused,
        continuous, can_be_continuous, min_memory_gb, interval_us, next_continuous,
        max_running, max_attempts_returned, max_retries, next_work_spec_name, runtime)
    VALUES (p_namespace, p_name, p_definition, p_priority, p_weight, p_paused,
        p_continuous, p_can_be_continuous, p_min_memory_gb, p_interval_us, NULL,
        p_max_running, p_max_attempts_returned, p_max_retries, p_next_work_spec_name,
        p_runtime)
    ON CONFLICT (namespace_id, name) DO UPDATE SET definition = EXCLUDED.definition,
        priority = EXCLUDED.priority, weight = EXCLUDED.weight, paused = EXCLUDED.paused,
        continuous = EXCLUDED.continuous, can_be_continuous = EXCLUDED.can_be_continuous,
        min_memory_gb = EXCLUDED.min_memory_gb, interval_us = EXCLUDED.interval_us,
        next_continuous = NULL, max_running = EXCLUDED.max_running,
        max_attempts_returned = EXCLUDED.max_attempts_returned,
        max_retries = EXCLUDED.max_retries,
        next_work_spec_name = EXCLUDED.next_work_spec_name, runtime = EXCLUDED.runtime
    RETURNING id INTO defined;
    IF defined IS DISTINCT FROM locked THEN
        PERFORM coordinate_lock_spec_definition(defined);
    END IF;
    RETURN defined;
END $$;

CREATE OR REPLACE FUNCTION coordinate_hand_out(p_spec bigint, p_worker bigint, p_wanted bigint,
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
    spec_locked boolean := false;
BEGIN
    -- Before the spec is read: a change of its definition waits for this
    -- hand-out to commit, and one in progress makes it wait. The lock of
    -- coordinate_lock_spec_definition, shared, taken here directly: called
    -- through a PL/pgSQL function, it made a hand-out about a tenth slower.
    PERFORM pg_advisory_xact_lock_shared(1936745827, (p_spec & 2147483647)::integer);
    -- The spec's lock first, when its running units are counted, and the
    -- expiry after: the expiry locks units and writes counters, and so
    -- does a hand-out holding the spec's lock.
    IF EXISTS (SELECT 1 FROM work_spec s WHERE s.id = p_spec AND s.max_running > 0) THEN
        PERFORM 1 FROM work_spec WHERE id = p_spec FOR NO KEY UPDATE;
        spec_locked := true;
    END IF;
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
        IF NOT spec_locked THEN
            PERFORM 1 FROM work_spec WHERE id = p_spec FOR NO KEY UPDATE;
        END IF;
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
