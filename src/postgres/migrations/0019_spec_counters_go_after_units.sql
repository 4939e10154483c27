-- Version 19: a destroyed spec's counters go after its units.
--
-- The counters' foreign key deleted a destroyed spec's counter rows (a
-- cascade, run per row) before version 5's statement trigger deleted its
-- units. A change that had taken one of those units and not yet added to
-- the counters then waited for a deleted counter row while the destroy
-- waited for the unit: a deadlock, whose victim was usually the destroy.
-- The trigger now deletes the counter rows after the units, the order in
-- which every writer takes them.
--
-- A unit insert checks its spec (version 5's trigger, which locks the
-- spec's row) before it adds to the counters: statement triggers run in
-- the order of their names, and the check is renamed to sort first. A
-- destroy in progress makes a new unit's insert wait, holding no counter
-- row, then fail; and no counter row of a destroyed spec is made after
-- these go. (An add that also replaces existing units has taken them, and
-- counted them, before the check: it can still deadlock with a destroy,
-- and is retried as every deadlock's victim is.)
ALTER TABLE work_unit_count DROP CONSTRAINT work_unit_count_work_spec_id_fkey;
ALTER TRIGGER coordinate_unit_spec_check ON work_unit RENAME TO coordinate_check_unit_spec;

CREATE OR REPLACE FUNCTION coordinate_unit_spec_cascade() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM work_unit u USING old_specs o WHERE u.work_spec_id = o.id;
    DELETE FROM work_unit_count c USING old_specs o WHERE c.work_spec_id = o.id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION coordinate_unit_spec_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM work_unit;
    DELETE FROM work_unit_count;
    RETURN NULL;
END $$;
