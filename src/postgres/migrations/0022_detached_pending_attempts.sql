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
-- treats it as the pending attempt, not active, that it is. An attempt is
-- detached in the statement that takes its unit's link away from it.
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
