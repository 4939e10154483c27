-- Version 11: destroying a namespace unlinks other namespaces' units from
-- the attempts its workers made on them.
--
-- A worker's attempts go with it (cascade), and a worker may have attempts
-- on units of other namespaces. Deleting the namespace alone left such a
-- unit linked to its vanished active attempt: Pending by its state and
-- counters for good, never handed out again. The destroy now locks the
-- namespace (no new workers join it) and its workers (no new attempts by
-- them), unlinks those units as clear_active_attempt does, then deletes.
-- Each statement reads what committed before it, so an attempt made before
-- the workers were locked is seen.

CREATE FUNCTION coordinate_destroy_namespace(p_namespace bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM namespace WHERE id = p_namespace FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM 1 FROM worker WHERE namespace_id = p_namespace FOR UPDATE;
    UPDATE work_unit u SET active_attempt_id = NULL, state = 0
    FROM attempt a JOIN worker w ON w.id = a.worker_id
    JOIN work_spec s ON s.id = a.work_spec_id
    WHERE w.namespace_id = p_namespace AND s.namespace_id <> p_namespace
      AND u.id = a.work_unit_id AND u.active_attempt_id = a.id;
    DELETE FROM namespace WHERE id = p_namespace;
END $$;
