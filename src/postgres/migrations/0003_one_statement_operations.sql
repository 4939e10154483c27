-- Version 3: the operations that change several rows, as functions, so
-- that each is one statement and one round trip (see src/postgres/mod.rs).
--
-- Lock order: every function locks a work unit row before any attempt row
-- of it, so two of them never wait for each other in a cycle. Functions are
-- VOLATILE: under READ COMMITTED each statement inside sees every commit
-- made before it started, in particular those of a transaction it waited
-- for on a row lock. Attempt statuses are 0 pending, 1 expired, 2 finished,
-- 3 failed, 4 retryable. Outcomes of the state changes: 0 done, 1 gone,
-- 2 not pending, 3 lost lease, 4 chaining needs the stored data parsed.

-- Lazy expiry: every active, pending attempt of the scope whose deadline is
-- before p_now becomes Expired, leaves its worker's active list, and its
-- unit's link to it is cleared. The scope is one spec (p_spec), one
-- namespace (p_namespace) or, with neither, everything.
CREATE FUNCTION coordinate_expire(p_namespace bigint, p_spec bigint, p_now timestamptz)
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
    UPDATE work_unit u SET active_attempt_id = NULL FROM expired e
    WHERE u.id = e.work_unit_id AND u.active_attempt_id = e.id;
END $$;

-- Creates a unit or replaces its data and meta; a unit whose active
-- attempt is Finished or Failed loses the link (it runs again), any other
-- keeps it. The attempt's status is read after the unit is locked, so a
-- concurrent finish either completes first (and is seen) or waits for this.
-- Answers the unit's id.
CREATE FUNCTION coordinate_upsert_unit(p_spec bigint, p_name bytea, p_data jsonb,
    p_priority double precision, p_not_before timestamptz)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unit_id bigint;
    active bigint;
BEGIN
    LOOP
        SELECT id, active_attempt_id INTO unit_id, active FROM work_unit
        WHERE work_spec_id = p_spec AND name = p_name
        FOR NO KEY UPDATE;
        IF FOUND THEN
            IF active IS NOT NULL
               AND EXISTS (SELECT 1 FROM attempt WHERE id = active AND status IN (2, 3)) THEN
                active := NULL;
            END IF;
            UPDATE work_unit SET data = p_data, priority = p_priority, not_before = p_not_before,
                active_attempt_id = active
            WHERE id = unit_id;
            RETURN unit_id;
        END IF;
        INSERT INTO work_unit (work_spec_id, name, data, priority, not_before, active_attempt_id)
        VALUES (p_spec, p_name, p_data, p_priority, p_not_before, NULL)
        ON CONFLICT (work_spec_id, name) DO NOTHING
        RETURNING id INTO unit_id;
        IF unit_id IS NOT NULL THEN
            RETURN unit_id;
        END IF;
        -- Another adder created it since: replace its data under its lock.
    END LOOP;
END $$;

-- Locks attempt p_attempt's unit, then the attempt; answers the attempt's
-- status, whether it is its unit's active attempt, its spec and unit, or
-- nothing for an attempt that no longer exists.
CREATE FUNCTION coordinate_lock_attempt(p_attempt bigint,
    OUT status smallint, OUT active boolean, OUT spec_id bigint, OUT unit_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    link bigint;
BEGIN
    SELECT u.id, u.active_attempt_id INTO unit_id, link FROM work_unit u
    WHERE u.id = (SELECT a.work_unit_id FROM attempt a WHERE a.id = p_attempt)
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT a.status, a.work_spec_id INTO status, spec_id FROM attempt a WHERE a.id = p_attempt
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        unit_id := NULL;
        RETURN;
    END IF;
    active := COALESCE(link = p_attempt, false);
END $$;

-- renew (p_change 0, until p_until), expire (1), fail (3), retry (4, the
-- unit not before p_until), with data p_data if given.
CREATE FUNCTION coordinate_change(p_attempt bigint, p_change smallint, p_now timestamptz,
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
                                     ELSE active_attempt_id END
        WHERE id = cur.unit_id;
    ELSIF p_change = 1 AND cur.active THEN
        UPDATE work_unit SET active_attempt_id = NULL
        WHERE id = cur.unit_id AND active_attempt_id = p_attempt;
    END IF;
    RETURN 0;
END $$;

-- finish with data p_data if given, then, if the attempt is active, chain:
-- the units parsed from the effective data (p_names, p_datas, p_priorities,
-- p_not_befores, in order) are added to the spec its spec's `then` names,
-- if that spec exists. Without p_data the units must have been parsed from
-- the stored data: p_parsed is the data they were parsed from; if it is
-- missing or no longer the stored data while chaining would happen, nothing
-- changes and the outcome is 4 with the stored data.
CREATE FUNCTION coordinate_finish(p_attempt bigint, p_now timestamptz, p_data jsonb,
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
    IF next_id IS NOT NULL THEN
        FOR i IN 1 .. COALESCE(cardinality(p_names), 0) LOOP
            PERFORM coordinate_upsert_unit(next_id, p_names[i], p_datas[i], p_priorities[i],
                                           p_not_befores[i]);
        END LOOP;
    END IF;
    outcome := 0;
END $$;

-- Hands out up to p_wanted units of spec p_spec to worker p_worker, after
-- an expiry check of namespace p_expire_namespace if given. The spec's
-- max_attempts_returned caps the count; with a max_running the spec row is
-- locked and the running attempts counted under the lock, so concurrent
-- requests never exceed it; without one nothing but the units taken is
-- locked (SKIP LOCKED: concurrent requests take different units). Units over
-- the spec's max_retries are failed with p_retry_data and the next ones
-- taken. When nothing is available and p_continuous_name is given, the
-- spec's continuous unit of that name is made (under the spec's lock, its
-- conditions checked again) and the spec's next continuous time set to
-- p_next_continuous. Answers the attempts made, in execution order.
CREATE FUNCTION coordinate_request(p_spec bigint, p_worker bigint, p_wanted bigint,
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
                UPDATE work_unit u SET active_attempt_id = c.id FROM created c
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
                UPDATE work_unit u SET active_attempt_id = c.id FROM created c
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
        END IF;
        -- Every unit taken was over its retry limit and is now failed: take
        -- the next ones of the same spec.
        EXIT WHEN taken = 0 OR returned > 0;
        created_any := true;
    END LOOP;
END $$;

-- The continuous unit of spec p_spec named p_name, if the spec may start
-- one now (continuous, next continuous time reached, no unit available, no
-- attempt running), checked under the spec's lock; its next continuous time
-- becomes p_next. An existing unit of that name is used as it is. Answers
-- the unit's id, or nothing.
CREATE FUNCTION coordinate_continuous(p_spec bigint, p_now timestamptz, p_name bytea,
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
        AND NOT EXISTS (SELECT 1 FROM work_unit u WHERE u.work_spec_id = p_spec
                AND u.active_attempt_id IS NULL
                AND (u.not_before IS NULL OR u.not_before <= p_now))
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

-- The units of spec p_spec a query selects, after an expiry check at p_now:
-- names in p_names (all if empty), after p_previous (if not empty), with a
-- status in p_statuses (WorkUnitStatus ordinals; all if NULL), by name,
-- at most p_limit (all if NULL); locked, then changed: p_change 0 sets their
-- priority to p_value, 1 adds p_value to it, 2 deletes them. Answers how
-- many were selected.
CREATE FUNCTION coordinate_change_units(p_spec bigint, p_names bytea[], p_previous bytea,
    p_limit bigint, p_statuses smallint[], p_now timestamptz, p_change smallint,
    p_value double precision)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF EXISTS (SELECT 1 FROM attempt a
               JOIN work_unit u ON u.id = a.work_unit_id AND u.active_attempt_id = a.id
               WHERE a.work_spec_id = p_spec AND a.status = 0 AND a.expiration_time < p_now) THEN
        PERFORM coordinate_expire(NULL, p_spec, p_now);
    END IF;
    -- The unit's status (available 1, pending 2, finished 3, failed 4,
    -- delayed 5) from its active attempt and not-before time.
    ids := ARRAY(
        SELECT u.id FROM work_unit u LEFT JOIN attempt a ON a.id = u.active_attempt_id
        WHERE u.work_spec_id = p_spec
          AND (cardinality(p_names) = 0 OR u.name = ANY (p_names))
          AND (length(p_previous) = 0 OR u.name > p_previous)
          AND (p_statuses IS NULL
               OR (CASE WHEN a.status = 0 THEN 2 WHEN a.status = 2 THEN 3
                        WHEN a.status = 3 THEN 4 WHEN u.not_before > p_now THEN 5
                        ELSE 1 END) = ANY (p_statuses))
        ORDER BY u.name
        LIMIT p_limit
        FOR UPDATE OF u);
    IF p_change = 0 THEN
        UPDATE work_unit SET priority = p_value WHERE id = ANY (ids);
    ELSIF p_change = 1 THEN
        UPDATE work_unit SET priority = priority + p_value WHERE id = ANY (ids);
    ELSE
        DELETE FROM work_unit WHERE id = ANY (ids);
    END IF;
    RETURN cardinality(ids);
END $$;
