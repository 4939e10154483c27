-- Version 12: units waiting for their not-before time cost a request
-- nothing.
--
-- The hand-out walked the units without an active attempt in execution
-- order and skipped those whose not-before time was ahead: after a wave of
-- retries with a delay, every request read every delayed unit. Now such a
-- unit has a state of its own, 4 (waiting): a unit without an active
-- attempt is in state 4 when its not-before time was set after it last
-- became ready, else in state 0 (ready). The expiry check also makes the
-- waiting units whose time has come ready (an index range of those only),
-- and the hand-out takes units in execution order from state 0 alone. Reads
-- stay read-only: a waiting unit whose time has come counts as Available,
-- found in the same index range, and makes the read's check due, so it is
-- applied once after the read as an expired attempt is; a request applies
-- it in its hand-out, before taking units.
--
-- Writers keep writing state 0 for a unit without an active attempt; a row
-- trigger, called only for rows with a not-before time, makes it state 4
-- when the unit got its not-before time or left another state, and makes a
-- waiting unit whose not-before time is cleared ready. Only the expiry
-- check moves a unit from 4 to 0 with its not-before time in place. A
-- not-before time can also be ahead of a ready unit when the clock goes
-- back; every read and the hand-out still compare not-before times with
-- now, so the states only decide which index is read, never an answer.

CREATE FUNCTION coordinate_unit_waits() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.state := CASE WHEN NEW.not_before IS NULL THEN 0 ELSE 4 END;
    RETURN NEW;
END $$;

CREATE TRIGGER coordinate_unit_waits_insert BEFORE INSERT ON work_unit
    FOR EACH ROW WHEN (NEW.state = 0 AND NEW.not_before IS NOT NULL)
    EXECUTE FUNCTION coordinate_unit_waits();
CREATE TRIGGER coordinate_unit_waits_update BEFORE UPDATE ON work_unit
    FOR EACH ROW WHEN ((NEW.state = 0 AND NEW.not_before IS NOT NULL
                        AND (OLD.state IN (1, 2, 3)
                             OR (OLD.state = 0 AND NEW.not_before IS DISTINCT FROM OLD.not_before)))
                       OR (NEW.state = 4 AND NEW.not_before IS NULL))
    EXECUTE FUNCTION coordinate_unit_waits();

ALTER TABLE work_unit_count ADD COLUMN waiting bigint NOT NULL DEFAULT 0;

-- The counters (as version 4's), with the waiting units in their own column.
CREATE OR REPLACE FUNCTION coordinate_count_units() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    my_stripe smallint := pg_backend_pid() % 16;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO work_unit_count AS c (work_spec_id, stripe, idle, pending, finished, failed,
            waiting)
        SELECT work_spec_id, my_stripe, count(*) FILTER (WHERE state = 0),
            count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2),
            count(*) FILTER (WHERE state = 3), count(*) FILTER (WHERE state = 4)
        FROM new_rows GROUP BY work_spec_id ORDER BY work_spec_id
        ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle + EXCLUDED.idle,
            pending = c.pending + EXCLUDED.pending, finished = c.finished + EXCLUDED.finished,
            failed = c.failed + EXCLUDED.failed, waiting = c.waiting + EXCLUDED.waiting;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO work_unit_count AS c (work_spec_id, stripe, idle, pending, finished, failed,
            waiting)
        SELECT o.work_spec_id, my_stripe, -count(*) FILTER (WHERE o.state = 0),
            -count(*) FILTER (WHERE o.state = 1), -count(*) FILTER (WHERE o.state = 2),
            -count(*) FILTER (WHERE o.state = 3), -count(*) FILTER (WHERE o.state = 4)
        FROM old_rows o
        WHERE EXISTS (SELECT 1 FROM work_spec s WHERE s.id = o.work_spec_id)
        GROUP BY o.work_spec_id ORDER BY o.work_spec_id
        ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle + EXCLUDED.idle,
            pending = c.pending + EXCLUDED.pending, finished = c.finished + EXCLUDED.finished,
            failed = c.failed + EXCLUDED.failed, waiting = c.waiting + EXCLUDED.waiting;
    ELSE
        INSERT INTO work_unit_count AS c (work_spec_id, stripe, idle, pending, finished, failed,
            waiting)
        SELECT ch.work_spec_id, my_stripe,
            count(*) FILTER (WHERE ch.to_state = 0) - count(*) FILTER (WHERE ch.from_state = 0),
            count(*) FILTER (WHERE ch.to_state = 1) - count(*) FILTER (WHERE ch.from_state = 1),
            count(*) FILTER (WHERE ch.to_state = 2) - count(*) FILTER (WHERE ch.from_state = 2),
            count(*) FILTER (WHERE ch.to_state = 3) - count(*) FILTER (WHERE ch.from_state = 3),
            count(*) FILTER (WHERE ch.to_state = 4) - count(*) FILTER (WHERE ch.from_state = 4)
        FROM (SELECT n.work_spec_id, n.state AS to_state, o.state AS from_state
              FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE o.state <> n.state) ch
        GROUP BY ch.work_spec_id ORDER BY ch.work_spec_id
        ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle + EXCLUDED.idle,
            pending = c.pending + EXCLUDED.pending, finished = c.finished + EXCLUDED.finished,
            failed = c.failed + EXCLUDED.failed, waiting = c.waiting + EXCLUDED.waiting;
    END IF;
    RETURN NULL;
END $$;

UPDATE work_unit SET state = 4 WHERE state = 0 AND not_before IS NOT NULL;

-- Ready units in execution order; waiting units by not-before time.
CREATE INDEX work_unit_ready ON work_unit (work_spec_id, priority DESC, name) WHERE state = 0;
CREATE INDEX work_unit_waiting ON work_unit (work_spec_id, not_before) WHERE state = 4;
DROP INDEX work_unit_idle;

-- A spec's counts (as version 9's), and how many waiting units' time has
-- come. Idle units are the ready and the waiting ones; the Delayed among
-- them are the waiting ones but those whose time has come (a range of the
-- waiting index), and the ready ones whose not-before time is ahead (a
-- range of the delayed index, empty unless the clock went back).
DROP FUNCTION coordinate_spec_counts(bigint, timestamptz);
CREATE FUNCTION coordinate_spec_counts(p_spec bigint, p_now timestamptz)
RETURNS TABLE (idle int8, pending int8, finished int8, failed int8, delayed int8,
               expired int8, expired_delayed int8, due int8)
LANGUAGE plpgsql STABLE ROWS 1
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    ready int8;
    waiting int8;
BEGIN
    SELECT COALESCE(sum(c.idle), 0)::int8, COALESCE(sum(c.waiting), 0)::int8,
           COALESCE(sum(c.pending), 0)::int8, COALESCE(sum(c.finished), 0)::int8,
           COALESCE(sum(c.failed), 0)::int8
        INTO ready, waiting, pending, finished, failed
        FROM work_unit_count c WHERE c.work_spec_id = p_spec;
    idle := ready + waiting;
    delayed := 0;
    expired := 0;
    expired_delayed := 0;
    due := 0;
    IF ready > 0 THEN
        SELECT count(*) INTO delayed FROM work_unit u
            WHERE u.work_spec_id = p_spec AND u.state = 0 AND u.not_before > p_now;
    END IF;
    IF waiting > 0 THEN
        SELECT count(*) INTO due FROM work_unit u
            WHERE u.work_spec_id = p_spec AND u.state = 4 AND u.not_before <= p_now;
        delayed := delayed + waiting - due;
    END IF;
    IF pending > 0 THEN
        SELECT count(*), count(*) FILTER (WHERE a.later) INTO expired, expired_delayed
            FROM (SELECT (SELECT COALESCE(y.not_before > p_now, false) FROM work_unit y
                          WHERE y.id = x.work_unit_id AND y.active_attempt_id = x.id) AS later
                    FROM attempt x
                    WHERE x.work_spec_id = p_spec AND x.status = 0
                      AND x.expiration_time < p_now
                    OFFSET 0) a
            WHERE a.later IS NOT NULL;
    END IF;
    RETURN NEXT;
END
$$;

-- The expiry check (as version 4's), which also makes the waiting units
-- whose time has come ready.
CREATE OR REPLACE FUNCTION coordinate_expire(p_namespace bigint, p_spec bigint, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    specs bigint[];
BEGIN
    IF p_spec IS NOT NULL THEN
        specs := ARRAY[p_spec];
    ELSIF p_namespace IS NOT NULL THEN
        specs := ARRAY(SELECT id FROM work_spec WHERE namespace_id = p_namespace);
    ELSE
        specs := ARRAY(SELECT id FROM work_spec);
    END IF;
    -- The units first, in id order.
    PERFORM 1 FROM attempt a JOIN work_unit u ON u.id = a.work_unit_id
    WHERE a.work_spec_id = ANY (specs) AND a.status = 0 AND a.expiration_time < p_now
      AND u.active_attempt_id = a.id
    ORDER BY u.id
    FOR NO KEY UPDATE OF u;
    WITH expired AS (
        UPDATE attempt a SET status = 1, end_time = p_now, on_active_list = false
        FROM work_unit u
        WHERE a.work_spec_id = ANY (specs) AND a.status = 0 AND a.expiration_time < p_now
          AND u.id = a.work_unit_id AND u.active_attempt_id = a.id
        RETURNING a.id, a.work_unit_id)
    UPDATE work_unit u SET active_attempt_id = NULL, state = 0 FROM expired e
    WHERE u.id = e.work_unit_id AND u.active_attempt_id = e.id;
    -- Waiting units whose time has come are ready. A concurrent check
    -- waits for these rows and then finds them ready: a hand-out after it
    -- sees them.
    UPDATE work_unit SET state = 0
    WHERE work_spec_id = ANY (specs) AND state = 4 AND not_before <= p_now;
END $$;

-- The hand-out (as version 4's), taking ready units: the expiry check it
-- makes first when one is due makes the waiting units whose time has come
-- ready.
CREATE OR REPLACE FUNCTION coordinate_request(p_spec bigint, p_worker bigint, p_wanted bigint,
    p_now timestamptz, p_expiration timestamptz, p_retry_data jsonb,
    p_continuous_name bytea, p_next_continuous timestamptz, p_expire_namespace bigint)
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
            SELECT c.id AS attempt_id, p.id AS unit_id, p.name AS unit_name,
                CASE WHEN spec.max_retries > 0
                     THEN (SELECT count(*) FROM attempt x WHERE x.work_unit_id = p.id) + 1
                     ELSE 0 END AS tries
            FROM created c JOIN picked p ON p.id = c.work_unit_id
            ORDER BY p.priority DESC, p.name
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
            generated := coordinate_continuous(p_spec, p_now, p_continuous_name,
                                               p_next_continuous);
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
END $$;

-- Continuous generation (as version 4's): a waiting unit whose time has come
-- is an idle unit too.
CREATE OR REPLACE FUNCTION coordinate_continuous(p_spec bigint, p_now timestamptz, p_name bytea,
    p_next timestamptz)
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
    UPDATE work_spec SET next_continuous = p_next WHERE id = p_spec;
    RETURN unit_id;
END $$;
