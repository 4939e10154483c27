-- Version 15: an update's counter changes, and a hand-out, cost linear
-- time however many units they change.
--
-- The counters trigger found an update's state changes by joining the old
-- and new transition rows on the unit id. PL/pgSQL keeps the plan of that
-- statement for the session, and after a few one-row updates (every
-- finish, renew and one-unit request) the kept plan assumes one row on
-- each side: a nested loop, so an update of N units compared N² pairs
-- while it held their row locks (10,000 units took seconds). No join is
-- needed: per spec, the count of each state among the new rows minus its
-- count among the old rows is the change, so both sides are counted in one
-- pass, and specs whose counts did not move write nothing, as before.

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
        SELECT d.work_spec_id, my_stripe, d.idle, d.pending, d.finished, d.failed, d.waiting
        FROM (SELECT ch.work_spec_id,
                     COALESCE(sum(ch.sign) FILTER (WHERE ch.state = 0), 0) AS idle,
                     COALESCE(sum(ch.sign) FILTER (WHERE ch.state = 1), 0) AS pending,
                     COALESCE(sum(ch.sign) FILTER (WHERE ch.state = 2), 0) AS finished,
                     COALESCE(sum(ch.sign) FILTER (WHERE ch.state = 3), 0) AS failed,
                     COALESCE(sum(ch.sign) FILTER (WHERE ch.state = 4), 0) AS waiting
              FROM (SELECT work_spec_id, state, 1 AS sign FROM new_rows
                    UNION ALL
                    SELECT work_spec_id, state, -1 FROM old_rows) ch
              GROUP BY ch.work_spec_id) d
        WHERE d.idle <> 0 OR d.pending <> 0 OR d.finished <> 0 OR d.failed <> 0
            OR d.waiting <> 0
        ORDER BY d.work_spec_id
        ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle + EXCLUDED.idle,
            pending = c.pending + EXCLUDED.pending, finished = c.finished + EXCLUDED.finished,
            failed = c.failed + EXCLUDED.failed, waiting = c.waiting + EXCLUDED.waiting;
    END IF;
    RETURN NULL;
END $$;

-- The hand-out (as version 12's), reading the names of the units it took
-- from the units by key: it joined its own two result sets, which the kept
-- plan (made for one unit, as most requests want) also joins in a nested
-- loop, every attempt made against every unit taken.
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
