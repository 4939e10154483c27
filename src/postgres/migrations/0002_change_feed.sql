-- Version 2: the change feed (see src/postgres/notify.rs).
--
-- Every deleting statement notifies channel coordinate_feed from AFTER ...
-- FOR EACH STATEMENT triggers, so a notification is part of the deleting
-- transaction: delivered on commit, never on rollback, whoever deleted
-- (this crate, another job server, or an administrator in psql). Rows
-- deleted by a cascade are not announced again: the parent's event covers
-- them (the joins below find no parent for them). Names are hex-encoded
-- bytea. A payload that would come near PostgreSQL's 8000-byte limit is
-- replaced by a coarser one: a spec-wide unit delete, or {"e":"all"}.

CREATE FUNCTION coordinate_feed_send(payload text, coarse text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF octet_length(payload) > 7000 THEN
        payload := coarse;
    END IF;
    IF octet_length(payload) > 7000 THEN
        payload := '{"e":"all"}';
    END IF;
    PERFORM pg_notify('coordinate_feed', payload);
END $$;

CREATE FUNCTION coordinate_feed_namespace() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT name FROM old_rows LOOP
        PERFORM coordinate_feed_send(
            json_build_object('e', 'ns', 'ns', encode(r.name, 'hex'))::text,
            '{"e":"all"}');
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_namespace AFTER DELETE ON namespace
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_namespace();

CREATE FUNCTION coordinate_feed_work_spec() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT n.name AS ns, o.name AS spec
             FROM old_rows o JOIN namespace n ON n.id = o.namespace_id LOOP
        PERFORM coordinate_feed_send(
            json_build_object('e', 'spec', 'ns', encode(r.ns, 'hex'),
                              'spec', encode(r.spec, 'hex'))::text,
            json_build_object('e', 'ns', 'ns', encode(r.ns, 'hex'))::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_work_spec AFTER DELETE ON work_spec
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_work_spec();

CREATE FUNCTION coordinate_feed_redefine() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM coordinate_feed_send(
        json_build_object('e', 'redef',
                          'ns', (SELECT encode(name, 'hex') FROM namespace
                                 WHERE id = NEW.namespace_id),
                          'spec', encode(NEW.name, 'hex'))::text,
        '{"e":"none"}');
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_redefine AFTER UPDATE OF definition ON work_spec
    FOR EACH ROW WHEN (OLD.definition IS DISTINCT FROM NEW.definition)
    EXECUTE FUNCTION coordinate_feed_redefine();

-- Up to 200 names per spec are listed; more make a spec-wide event.
CREATE FUNCTION coordinate_feed_work_unit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT n.name AS ns, s.name AS spec,
                    CASE WHEN count(*) <= 200
                         THEN array_agg(encode(o.name, 'hex')) END AS units
             FROM old_rows o
             JOIN work_spec s ON s.id = o.work_spec_id
             JOIN namespace n ON n.id = s.namespace_id
             GROUP BY n.name, s.name LOOP
        PERFORM coordinate_feed_send(
            json_build_object('e', 'units', 'ns', encode(r.ns, 'hex'),
                              'spec', encode(r.spec, 'hex'), 'units', r.units)::text,
            json_build_object('e', 'units', 'ns', encode(r.ns, 'hex'),
                              'spec', encode(r.spec, 'hex'), 'units', NULL)::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_work_unit AFTER DELETE ON work_unit
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_work_unit();

CREATE FUNCTION coordinate_feed_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT n.name AS ns, o.name AS w
             FROM old_rows o JOIN namespace n ON n.id = o.namespace_id LOOP
        PERFORM coordinate_feed_send(
            json_build_object('e', 'worker', 'ns', encode(r.ns, 'hex'),
                              'worker', encode(r.w, 'hex'))::text,
            json_build_object('e', 'ns', 'ns', encode(r.ns, 'hex'))::text);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_worker_delete AFTER DELETE ON worker
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_worker();

CREATE FUNCTION coordinate_feed_worker_parent() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ns bytea;
BEGIN
    SELECT name INTO ns FROM namespace WHERE id = NEW.namespace_id;
    IF ns IS NOT NULL THEN
        PERFORM coordinate_feed_send(
            json_build_object('e', 'worker', 'ns', encode(ns, 'hex'),
                              'worker', encode(NEW.name, 'hex'))::text,
            json_build_object('e', 'ns', 'ns', encode(ns, 'hex'))::text);
    END IF;
    RETURN NULL;
END $$;

-- Column lists and transition tables do not mix: one row at a time.
CREATE TRIGGER coordinate_feed_worker_parent AFTER UPDATE OF parent_id ON worker
    FOR EACH ROW WHEN (OLD.parent_id IS DISTINCT FROM NEW.parent_id)
    EXECUTE FUNCTION coordinate_feed_worker_parent();

-- TRUNCATE names no rows: every cache drops everything.
CREATE FUNCTION coordinate_feed_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('coordinate_feed', '{"e":"all"}');
    RETURN NULL;
END $$;

CREATE TRIGGER coordinate_feed_truncate_namespace AFTER TRUNCATE ON namespace
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_truncate();
CREATE TRIGGER coordinate_feed_truncate_work_spec AFTER TRUNCATE ON work_spec
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_truncate();
CREATE TRIGGER coordinate_feed_truncate_work_unit AFTER TRUNCATE ON work_unit
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_truncate();
CREATE TRIGGER coordinate_feed_truncate_worker AFTER TRUNCATE ON worker
    FOR EACH STATEMENT EXECUTE FUNCTION coordinate_feed_truncate();
