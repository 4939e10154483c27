-- Version 6: a spec's counts read through a function whose query keeps its
-- generic plan.
--
-- The counts query is seven small index reads, about 12 µs to run. Its
-- custom plans, which know the time it is asked at, cost more than that to
-- make (about 110 µs), yet look cheaper to the planner than the generic
-- plan, so every counted read made a new one. Run inside this function,
-- the query uses its generic plan, cached per connection; that plan reads
-- the same indexes (checked by the crate's plan tests).

CREATE FUNCTION coordinate_spec_counts(p_spec bigint, p_now timestamptz)
RETURNS TABLE (idle int8, pending int8, finished int8, failed int8, delayed int8,
               expired int8, expired_delayed int8)
LANGUAGE plpgsql STABLE ROWS 1
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- Stored states from the counters; Delayed and expired units from two
    -- small index ranges. An attempt's unit is read by a subquery of its
    -- own, so the plan fetches it by key rather than joining every unit.
    RETURN QUERY SELECT
        (SELECT COALESCE(sum(k.idle), 0)::int8 FROM work_unit_count k WHERE k.work_spec_id = p_spec),
        (SELECT COALESCE(sum(k.pending), 0)::int8 FROM work_unit_count k WHERE k.work_spec_id = p_spec),
        (SELECT COALESCE(sum(k.finished), 0)::int8 FROM work_unit_count k WHERE k.work_spec_id = p_spec),
        (SELECT COALESCE(sum(k.failed), 0)::int8 FROM work_unit_count k WHERE k.work_spec_id = p_spec),
        (SELECT count(*) FROM work_unit d
            WHERE d.work_spec_id = p_spec AND d.state = 0 AND d.not_before > p_now),
        (SELECT count(*) FROM attempt x
            WHERE x.work_spec_id = p_spec AND x.status = 0 AND x.expiration_time < p_now
            AND (SELECT y.active_attempt_id FROM work_unit y WHERE y.id = x.work_unit_id) = x.id),
        (SELECT count(*) FROM attempt x
            WHERE x.work_spec_id = p_spec AND x.status = 0 AND x.expiration_time < p_now
            AND (SELECT y.not_before > p_now FROM work_unit y
                 WHERE y.id = x.work_unit_id AND y.active_attempt_id = x.id));
END
$$;
