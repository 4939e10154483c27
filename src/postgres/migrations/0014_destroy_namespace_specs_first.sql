-- Version 14: a namespace destroy deletes the namespace's specs before it
-- locks the namespace's workers.
--
-- Version 11 locked the workers first. A hand-out by one of them holds the
-- units it takes, then needs its worker (the new attempt's foreign key):
-- the destroy, holding the worker and waiting for those units, deadlocked
-- with it. Deleting the specs (with their units and attempts) first waits
-- for such a hand-out to end without holding what it needs; only then are
-- the workers locked and other namespaces' units unlinked from their
-- attempts. Otherwise as version 11.

CREATE OR REPLACE FUNCTION coordinate_destroy_namespace(p_namespace bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM namespace WHERE id = p_namespace FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    DELETE FROM work_spec WHERE namespace_id = p_namespace;
    PERFORM 1 FROM worker WHERE namespace_id = p_namespace FOR UPDATE;
    UPDATE work_unit u SET active_attempt_id = NULL, state = 0
    FROM attempt a JOIN worker w ON w.id = a.worker_id
    WHERE w.namespace_id = p_namespace AND u.id = a.work_unit_id AND u.active_attempt_id = a.id;
    DELETE FROM namespace WHERE id = p_namespace;
END $$;
