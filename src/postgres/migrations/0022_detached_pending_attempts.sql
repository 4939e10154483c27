-- Version 22: a pending attempt that is no longer its unit's active one is
-- stored with status 5, "pending, detached".
--
-- Clearing a unit's active attempt, or superseding it with make_attempt,
-- leaves the attempt Pending, and no expiry check expires it. With status 0
-- it stayed in attempt_pending, the index every expiry check, count and
-- hand-out reads by deadline: once past its deadline, each of them read it
-- (and its unit) again, so status reads and hand-outs slowed with every
-- attempt ever cleared. Status 5 keeps it out of that index. It reads as
-- Pending: the Rust decoder maps it, and coordinate_lock_attempt reports it
-- as 0, so every change from Pending (renew, expire, finish, fail, retry)
-- treats it as the pending attempt, not active, that it is.
--
-- An attempt is detached by the function that takes its unit's link away,
-- in a statement after the one that locks the unit: at read committed each
-- statement sees what committed before it started, so the attempt made
-- while the lock was awaited is seen and detached. They are
-- coordinate_clear_active and coordinate_make_attempt (new) and
-- coordinate_continuous, whose unit then takes a new attempt whatever it
-- was running.
--
-- Job servers of the previous version, still running while this one rolls
-- out, leave the attempts they detach at status 0 (slower, as before), and
-- fail to decode the status of one stored detached.

UPDATE attempt a SET status = 5
WHERE a.status = 0 AND NOT EXISTS (
    SELECT 1 FROM work_unit u WHERE u.id = a.work_unit_id AND u.active_attempt_id = a.id);

CREATE OR REPLACE FUNCTION coordinate_lock_attempt(p_attempt bigint,
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
    SELECT CASE WHEN a.status = 5 THEN 0 ELSE a.status END, a.work_spec_id
    INTO status, spec_id FROM attempt a WHERE a.id = p_attempt
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        unit_id := NULL;
        RETURN;
    END IF;
    active := COALESCE(link = p_attempt, false);
END $$;

CREATE FUNCTION coordinate_clear_active(p_unit bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    link bigint;
BEGIN
    SELECT u.active_attempt_id INTO link FROM work_unit u WHERE u.id = p_unit
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- A unit without an active attempt keeps its state: ready or waiting
    -- for its not-before time.
    IF link IS NOT NULL THEN
        UPDATE attempt SET status = 5 WHERE id = link AND status = 0;
        UPDATE work_unit SET active_attempt_id = NULL, state = 0 WHERE id = p_unit;
    END IF;
    RETURN true;
END $$;

CREATE FUNCTION coordinate_make_attempt(p_unit bigint, p_worker bigint, p_now timestamptz,
    p_expiration timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    target record;
    made bigint;
BEGIN
    SELECT u.work_spec_id, u.data, u.active_attempt_id INTO target FROM work_unit u
    WHERE u.id = p_unit FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE attempt SET status = 5 WHERE id = target.active_attempt_id AND status = 0;
    INSERT INTO attempt (work_unit_id, work_spec_id, worker_id, status, data, start_time,
        expiration_time, on_active_list)
    VALUES (p_unit, target.work_spec_id, p_worker, 0, target.data, p_now, p_expiration, true)
    RETURNING id INTO made;
    UPDATE work_unit SET active_attempt_id = made, state = 1 WHERE id = p_unit;
    RETURN made;
END $$;

-- As version 21, and the generated unit's pending attempt, if any (made
-- by make_attempt), detached before the caller gives the unit a new one.
CREATE OR REPLACE FUNCTION coordinate_continuous(p_spec bigint, p_now timestamptz, p_name bytea)
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
    UPDATE attempt a SET status = 5 FROM work_unit u
    WHERE u.id = unit_id AND a.id = u.active_attempt_id AND a.status = 0;
    -- The interval is read under the lock, so a definition replaced since
    -- the caller read it counts; saturating at the latest storable instant.
    UPDATE work_spec
    SET next_continuous = LEAST(p_now + interval_us * interval '1 microsecond',
                                '9999-12-31 23:59:59.999999+00')
    WHERE id = p_spec;
    RETURN unit_id;
END $$;
