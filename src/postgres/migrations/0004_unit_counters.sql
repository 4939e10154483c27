-- Version 4: counts at a cost that does not grow with the units.
--
-- work_unit.state is the stored status of a unit's active attempt: 0 none
-- (no active attempt, or an Expired or Retryable one), 1 Pending,
-- 2 Finished, 3 Failed. Every statement that changes a unit's link or its
-- active attempt's status sets it in the same transaction. A unit's status
-- follows from its state, its not-before time and, for state 1, whether
-- the attempt's deadline has passed (then it counts as state 0).
--
-- work_unit_count holds, per spec, how many units are in each state,
-- maintained by statement triggers on work_unit in the changing
-- transaction. Its rows are striped by server process, so concurrent
-- transactions (each on its own connection) rarely wait for each other on
-- one counter row; a spec's counts are the sums over its stripes.

ALTER TABLE work_unit ADD COLUMN state smallint NOT NULL DEFAULT 0;

UPDATE work_unit u SET state = CASE a.status WHEN 0 THEN 1 ELSE a.status END
FROM attempt a
WHERE a.id = u.active_attempt_id AND a.status IN (0, 2, 3);

-- Units of a spec by state and name: status-filtered lists in name order.
CREATE INDEX work_unit_state ON work_unit (work_spec_id, state, name);
-- Units without a running or ended attempt whose not-before time is set:
-- the Delayed ones are a range of it.
CREATE INDEX work_unit_delayed ON work_unit (work_spec_id, not_before)
    WHERE state = 0 AND not_before IS NOT NULL;

CREATE TABLE work_unit_count (
    work_spec_id bigint NOT NULL REFERENCES work_spec (id) ON DELETE CASCADE,
    stripe       smallint NOT NULL,
    idle         bigint NOT NULL,
    pending      bigint NOT NULL,
    finished     bigint NOT NULL,
    failed       bigint NOT NULL,
    PRIMARY KEY (work_spec_id, stripe)
);

INSERT INTO work_unit_count (work_spec_id, stripe, idle, pending, finished, failed)
SELECT work_spec_id, 0, count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1),
    count(*) FILTER (WHERE state = 2), count(*) FILTER (WHERE state = 3)
FROM work_unit GROUP BY work_spec_id;

-- Adds the state changes of one statement to the counters, one row per
-- spec in spec order (so two statements lock counter rows in one order).
-- Units deleted with their spec are not counted: the spec's counters go
-- with it.
CREATE FUNCTION coordinate_count_units() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    my_stripe smallint := pg_backend_pid() % 16;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO work_unit_count AS c (work_spec_id, stripe, idle, pending, finished, failed)
        SELECT work_spec_id, my_stripe, count(*) FILTER (WHERE state = 0),
            count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2),
            count(*) FILTER (WHERE state = 3)
        FROM new_rows GROUP BY work_spec_id ORDER BY work_spec_id
        ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle + EXCLUDED.idle,
            pending = c.pending + EXCLUDED.pending, finished = c.finished + EXCLUDED.finished,
            failed = c.failed + EXCLUDED.failed;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO work_unit_count AS c (work_spec_id, stripe, idle, pending, finished, failed)
        SELECT o.work_spec_id, my_stripe, -count(*) FILTER (WHERE o.state = 0),
            -count(*) FILTER (WHERE o.state = 1), -count(*) FILTER (WHERE o.state = 2),
            -count(*) FILTER (WHERE o.state = 3)
        FROM old_rows o
        WHERE EXISTS (SELECT 1 FROM work_spec s WHERE s.id = o.work_spec_id)
        GROUP BY o.work_spec_id ORDER BY o.work_spec_id
        ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle + EXCLUDED.idle,
            pending = c.pending + EXCLUDED.pending, finished = c.finished + EXCLUDED.finished,
            failed = c.failed + EXCLUDED.failed;
    ELSE
        INSERT INTO work_unit_count AS c (work_spec_id, stripe, idle, pending, finished, failed)
        SELECT ch.work_spec_id, my_stripe,
            count(*) FILTER (WHERE ch.to_state = 0) - count(*) FILTER (WHERE ch.from_state = 0),
            count(*) FILTER (WHERE ch.to_state = 1) - count(*) FILTER (WHERE ch.from_state = 1),
            count(*) FILTER (WHERE ch.to_state = 2) - count(*) FILTER (WHERE ch.from_state = 2),
            count(*) FILTER (WHERE ch.to_state = 3) - count(*) FILTER (WHERE ch.from_state = 3)
        FROM (SELECT n.work_spec_id, n.state AS to_state, o.state AS from_state
              FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE o.state <> n.state) ch
        GROUP BY ch.work_spec_id ORDER BY ch.work_spec_id
        ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle + EXCLUDED.idle,
            pending = c.pending + EXCLUDED.pending, finished = c.finished + EXCLUDED.finished,
            failed = c.failed + EXCLUDED.failed;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_count_insert AFTER INSERT ON work_unit
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_count_units();
CREATE TRIGGER coordinate_count_update AFTER UPDATE ON work_unit
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_count_units();
CREATE TRIGGER coordinate_count_delete AFTER DELETE ON work_unit
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_count_units();

-- The functions of version 3 that change a unit's link or its active
-- attempt's status, now also setting the unit's state.

-- Lazy expiry (as before); expired units get state 0.
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
END $$;

-- Creates a unit or replaces its data and meta; a unit whose active
-- attempt is Finished or Failed (state 2 or 3) loses the link (it runs
-- again), any other keeps it. ON CONFLICT reads the state of the unit's
-- latest version under its lock, so a concurrent finish either completes
-- first (and is seen) or waits for this. Answers the unit's id.
CREATE OR REPLACE FUNCTION coordinate_upsert_unit(p_spec bigint, p_name bytea, p_data jsonb,
    p_priority double precision, p_not_before timestamptz)
RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO work_unit AS u (work_spec_id, name, data, priority, not_before,
        active_attempt_id, state)
    VALUES (p_spec, p_name, p_data, p_priority, p_not_before, NULL, 0)
    ON CONFLICT (work_spec_id, name) DO UPDATE SET data = EXCLUDED.data,
        priority = EXCLUDED.priority, not_before = EXCLUDED.not_before,
        active_attempt_id = CASE WHEN u.state IN (2, 3) THEN NULL ELSE u.active_attempt_id END,
        state = CASE WHEN u.state IN (2, 3) THEN 0 ELSE u.state END
    RETURNING id
$$;

-- renew, expire, fail, retry (as before), keeping the unit's state.
CREATE OR REPLACE FUNCTION coordinate_change(p_attempt bigint, p_change smallint, p_now timestamptz,
    p_data jsonb, p_until timestamptz)
RETURNS smallint
LANGUAGE plpgsql AS $$
DECLARE
    cur record;
    live boolean;
BEGIN
    SELECT * INTO cur FROM coordinate_lock_attempt(p_attempt);
    IF cur.unit_id IS NULL THEN
        RETURN 1;
    END IF;
    live := cur.status = 0 OR (cur.status = 1 AND cur.active);
    IF p_change = 0 THEN
        IF cur.status NOT IN (0, 1) THEN
            RETURN 2;
        END IF;
        IF cur.active THEN
            UPDATE attempt SET expiration_time = p_until, status = 0,
                data = COALESCE(p_data, data)
            WHERE id = p_attempt;
            UPDATE work_unit SET state = 1 WHERE id = cur.unit_id AND state <> 1;
            RETURN 0;
        END IF;
        UPDATE attempt SET status = 1, end_time = p_now, data = COALESCE(p_data, data),
            on_active_list = false
        WHERE id = p_attempt;
        RETURN 3;
    ELSIF p_change = 1 THEN
        IF cur.status = 1 THEN
            RETURN 0;
        ELSIF cur.status <> 0 THEN
            RETURN 2;
        END IF;
    ELSIF NOT live THEN
        RETURN 2;
    END IF;
    UPDATE attempt SET status = p_change, end_time = p_now, data = COALESCE(p_data, data),
        on_active_list = false
    WHERE id = p_attempt;
    IF p_change = 4 THEN
        UPDATE work_unit SET not_before = p_until,
            active_attempt_id = CASE WHEN active_attempt_id = p_attempt THEN NULL
                                     ELSE active_attempt_id END,
            state = CASE WHEN active_attempt_id = p_attempt THEN 0 ELSE state END
        WHERE id = cur.unit_id;
    ELSIF p_change = 1 AND cur.active THEN
        UPDATE work_unit SET active_attempt_id = NULL, state = 0
        WHERE id = cur.unit_id AND active_attempt_id = p_attempt;
    ELSIF p_change = 3 AND cur.active THEN
        UPDATE work_unit SET state = 3 WHERE id = cur.unit_id AND active_attempt_id = p_attempt;
    END IF;
    RETURN 0;
END $$;

-- finish with chaining (as before), keeping the unit's state.
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
    IF next_id IS NOT NULL THEN
        FOR i IN 1 .. COALESCE(cardinality(p_names), 0) LOOP
            PERFORM coordinate_upsert_unit(next_id, p_names[i], p_datas[i], p_priorities[i],
                                           p_not_befores[i]);
        END LOOP;
    END IF;
    outcome := 0;
END $$;

-- The hand-out (as before), keeping the units' state.
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
                WHERE u.work_spec_id = p_spec AND u.active_attempt_id IS NULL
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

-- Continuous generation (as before); the idle unit is looked up in the idle
-- index's order, so the check walks that index whatever the table order.
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
                AND u.active_attempt_id IS NULL
                AND (u.not_before IS NULL OR u.not_before <= p_now)
                ORDER BY u.priority DESC, u.name LIMIT 1) IS NULL
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

-- Query-selected unit changes are statements of their own, one per query
-- shape, so that each is planned for the parameters it has.
DROP FUNCTION coordinate_change_units(bigint, bytea[], bytea, bigint, smallint[], timestamptz,
    smallint, double precision);
