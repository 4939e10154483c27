-- Version 5: a unit's spec checked once per statement, not once per unit.
--
-- The foreign key from work_unit to work_spec checked every inserted unit
-- with a lookup and a row lock of its own, a quarter of a bulk add's time.
-- Triggers now give the same guarantee per statement: an insert locks each
-- spec it names once (FOR KEY SHARE, the lock the foreign key check takes,
-- so a concurrent spec delete waits for the insert or makes it fail) and
-- fails with a foreign-key violation if one is gone; deleting specs deletes
-- their units in the same statement; a unit never moves to another spec.

ALTER TABLE work_unit DROP CONSTRAINT work_unit_work_spec_id_fkey;

-- The specs of the inserted units, locked in spec order (so two inserts
-- lock them in one order).
CREATE FUNCTION coordinate_unit_spec_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    spec bigint;
BEGIN
    FOR spec IN SELECT DISTINCT work_spec_id FROM new_rows ORDER BY work_spec_id LOOP
        PERFORM 1 FROM work_spec WHERE id = spec FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('work spec %s does not exist', spec),
                TABLE = 'work_unit', CONSTRAINT = 'work_unit_work_spec_id_fkey';
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_unit_spec_check AFTER INSERT ON work_unit
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_unit_spec_check();

CREATE FUNCTION coordinate_unit_spec_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE foreign_key_violation USING
        MESSAGE = 'a work unit cannot move to another work spec',
        TABLE = 'work_unit', CONSTRAINT = 'work_unit_work_spec_id_fkey';
END $$;

CREATE TRIGGER coordinate_unit_spec_fixed BEFORE UPDATE OF work_spec_id ON work_unit
    FOR EACH ROW WHEN (OLD.work_spec_id IS DISTINCT FROM NEW.work_spec_id)
    EXECUTE FUNCTION coordinate_unit_spec_fixed();

-- The cascade the foreign key did. The spec rows are already gone, so the
-- counters and the change feed treat these units as deleted with their
-- spec, as before.
CREATE FUNCTION coordinate_unit_spec_cascade() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM work_unit u USING old_specs o WHERE u.work_spec_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_unit_spec_cascade AFTER DELETE ON work_spec
    REFERENCING OLD TABLE AS old_specs
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_unit_spec_cascade();

-- TRUNCATE work_spec no longer reaches work_unit by the foreign key; every
-- spec is gone, so every unit goes.
CREATE FUNCTION coordinate_unit_spec_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM work_unit;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_unit_spec_truncate AFTER TRUNCATE ON work_spec
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_unit_spec_truncate();
