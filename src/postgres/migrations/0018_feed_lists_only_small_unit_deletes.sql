-- Version 18: a unit delete aggregates names only where it lists them.
--
-- Version 2's trigger aggregated the hex names of every deleted unit and
-- then dropped the list of a spec with more than 200: deleting a spec's
-- million units built an array of all their names (past 1 GB, which fails
-- the delete) to send none. Names are now aggregated only for the specs
-- with at most 200 deleted units; the events are those of version 2.
CREATE OR REPLACE FUNCTION coordinate_feed_work_unit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN WITH counted AS (
                 SELECT work_spec_id, count(*) AS deleted
                 FROM old_rows GROUP BY work_spec_id),
             listed AS (
                 SELECT o.work_spec_id, array_agg(encode(o.name, 'hex')) AS units
                 FROM old_rows o JOIN counted c USING (work_spec_id)
                 WHERE c.deleted <= 200
                 GROUP BY o.work_spec_id)
             SELECT n.name AS ns, s.name AS spec, l.units
             FROM counted c
             JOIN work_spec s ON s.id = c.work_spec_id
             JOIN namespace n ON n.id = s.namespace_id
             LEFT JOIN listed l USING (work_spec_id) LOOP
        PERFORM coordinate_feed_send(
            json_build_object('e', 'units', 'ns', encode(r.ns, 'hex'),
                              'spec', encode(r.spec, 'hex'), 'units', r.units)::text,
            json_build_object('e', 'units', 'ns', encode(r.ns, 'hex'),
                              'spec', encode(r.spec, 'hex'), 'units', NULL)::text);
    END LOOP;
    RETURN NULL;
END $$;
