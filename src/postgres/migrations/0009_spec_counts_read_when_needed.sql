-- Version 9: a spec's counts read what depends on now only when the
-- counters say there can be some.
--
-- Delayed units are idle units, and expired ones pending units, so when the
-- counters hold no idle (or no pending) unit the matching read is skipped:
-- as a statement of its own under IF, it is then neither planned nor set up.
-- The read of overdue attempts computes each one's unit check once
-- (OFFSET 0 keeps the planner from copying it into both places that use it).
-- The answers are the same as version 8's.

CREATE OR REPLACE FUNCTION coordinate_spec_counts(p_spec bigint, p_now timestamptz)
RETURNS TABLE (idle int8, pending int8, finished int8, failed int8, delayed int8,
               expired int8, expired_delayed int8)
LANGUAGE plpgsql STABLE ROWS 1
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    SELECT COALESCE(sum(c.idle), 0)::int8, COALESCE(sum(c.pending), 0)::int8,
           COALESCE(sum(c.finished), 0)::int8, COALESCE(sum(c.failed), 0)::int8
        INTO idle, pending, finished, failed
        FROM work_unit_count c WHERE c.work_spec_id = p_spec;
    delayed := 0;
    expired := 0;
    expired_delayed := 0;
    IF idle > 0 THEN
        SELECT count(*) INTO delayed FROM work_unit u
            WHERE u.work_spec_id = p_spec AND u.state = 0 AND u.not_before > p_now;
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
