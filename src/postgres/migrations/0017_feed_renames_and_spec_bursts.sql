-- Version 17: renames and moves made outside this crate are announced, and
-- a delete of many specs of a namespace is one event.
--
-- This crate never renames an object or moves it to another parent, but an
-- administrator in psql may: caches that resolved the old name kept the
-- object under it, and since it still exists no Gone ever corrected them.
-- A changed name (or parent) is announced as a delete of the old one, from
-- row triggers that fire only when a name or parent column is set. The
-- upsert of a unit sets its name to itself, which the WHEN clause skips.

CREATE FUNCTION coordinate_feed_namespace_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coordinate_feed_send(
        json_build_object('e', 'ns', 'ns', encode(OLD.name, 'hex'))::text,
        '{"e":"all"}');
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_namespace_moved AFTER UPDATE OF name ON namespace
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION coordinate_feed_namespace_moved();

-- A spec or worker: the event of its kind ('spec' or 'worker'), naming it
-- by the key of the same name.
CREATE FUNCTION coordinate_feed_member_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ns bytea;
    kind text := CASE TG_TABLE_NAME WHEN 'work_spec' THEN 'spec' ELSE 'worker' END;
BEGIN
    SELECT name INTO ns FROM namespace WHERE id = OLD.namespace_id;
    IF ns IS NOT NULL THEN
        PERFORM coordinate_feed_send(
            json_build_object('e', kind, 'ns', encode(ns, 'hex'),
                              kind, encode(OLD.name, 'hex'))::text,
            json_build_object('e', 'ns', 'ns', encode(ns, 'hex'))::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_work_spec_moved AFTER UPDATE OF name, namespace_id ON work_spec
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
                       OR OLD.namespace_id IS DISTINCT FROM NEW.namespace_id)
    EXECUTE FUNCTION coordinate_feed_member_moved();

CREATE FUNCTION coordinate_feed_work_unit_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    SELECT n.name AS ns, s.name AS spec INTO r
    FROM work_spec s JOIN namespace n ON n.id = s.namespace_id
    WHERE s.id = OLD.work_spec_id;
    IF FOUND THEN
        PERFORM coordinate_feed_send(
            json_build_object('e', 'units', 'ns', encode(r.ns, 'hex'),
                              'spec', encode(r.spec, 'hex'),
                              'units', json_build_array(encode(OLD.name, 'hex')))::text,
            json_build_object('e', 'units', 'ns', encode(r.ns, 'hex'),
                              'spec', encode(r.spec, 'hex'), 'units', NULL)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_work_unit_moved AFTER UPDATE OF name, work_spec_id ON work_unit
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
                       OR OLD.work_spec_id IS DISTINCT FROM NEW.work_spec_id)
    EXECUTE FUNCTION coordinate_feed_work_unit_moved();

CREATE TRIGGER coordinate_feed_worker_moved AFTER UPDATE OF name, namespace_id ON worker
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
                       OR OLD.namespace_id IS DISTINCT FROM NEW.namespace_id)
    EXECUTE FUNCTION coordinate_feed_member_moved();

-- A statement deleting more than 200 specs of one namespace (a namespace
-- destroy deletes all of them first) announces the namespace once, as a
-- delete of more than 200 units of a spec is one spec-wide event: one
-- notification per spec could put every listener behind (a gap, and a
-- flush of every cache) for one change. Otherwise as version 2.
CREATE OR REPLACE FUNCTION coordinate_feed_work_spec() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    spec bytea;
BEGIN
    FOR r IN SELECT n.name AS ns,
                    CASE WHEN count(*) <= 200 THEN array_agg(o.name) END AS specs
             FROM old_rows o JOIN namespace n ON n.id = o.namespace_id
             GROUP BY n.name LOOP
        IF r.specs IS NULL THEN
            PERFORM coordinate_feed_send(
                json_build_object('e', 'ns', 'ns', encode(r.ns, 'hex'))::text,
                '{"e":"all"}');
            CONTINUE;
        END IF;
        FOREACH spec IN ARRAY r.specs LOOP
            PERFORM coordinate_feed_send(
                json_build_object('e', 'spec', 'ns', encode(r.ns, 'hex'),
                                  'spec', encode(spec, 'hex'))::text,
                json_build_object('e', 'ns', 'ns', encode(r.ns, 'hex'))::text);
        END LOOP;
    END LOOP;
    RETURN NULL;
END $$;
