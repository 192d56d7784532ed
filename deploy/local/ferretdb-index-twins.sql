-- Make FerretDB v1 (PostgreSQL backend) use the indexes the services declare. Applied by stack.sh to the
-- `ferretdb` database on every start; idempotent. Local stack only: MongoDB needs nothing of this.
--
-- Why: FerretDB v1 pushes an equality filter such as {_id: X} or {stream_id: X} down to PostgreSQL as jsonb
-- containment, `_jsonb -> '_id' @> '"X"'`, but builds each MongoDB index as a btree on `(_jsonb -> 'field')`.
-- A btree cannot serve `@>`, so every find, update or replace by key was a sequential scan of the collection
-- (measured: find by _id 3 ms at 10,000 small documents, 24 ms at 8,000 events, growing with the collection).
-- A GIN index (jsonb_path_ops) on the same expression serves `@>`: the same lookup takes 0.2 ms and stays flat.
--
-- How: an event trigger gives every btree index FerretDB creates on `(_jsonb -> 'field')` (the `_id` index of each
-- new collection, and the leading field of each declared index) a GIN twin on that expression. Other indexes are
-- left alone. A failure here must never fail FerretDB's own DDL: it is reported as a warning and skipped.

CREATE OR REPLACE FUNCTION petsit_index_twin(index_oid oid) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  method text;
  lead text;
  tbl regclass;
  twin text;
BEGIN
  SELECT am.amname, pg_get_indexdef(i.indexrelid, 1, true), i.indrelid::regclass,
         left(c.relname, 58) || '_gin'
    INTO method, lead, tbl, twin
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
   WHERE i.indexrelid = index_oid;
  IF method = 'btree' AND lead ~ '^\(?_jsonb -> ''[A-Za-z0-9_]+''::text\)?$' THEN
    -- fastupdate off: with it on, inserts pile up in a pending list that every lookup scans until a vacuum,
    -- which under a steady stream of inserts made each lookup O(recent inserts) again (1.2 ms instead of 0.05).
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
                   twin, tbl, lead);
    IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relname = twin AND n.oid = (SELECT relnamespace FROM pg_class WHERE oid = tbl)
                      AND 'fastupdate=off' = ANY (coalesce(c.reloptions, '{}'))) THEN
      EXECUTE format('ALTER INDEX %s SET (fastupdate = off)',
                     quote_ident((SELECT nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
                                   WHERE c.oid = tbl)) || '.' || quote_ident(twin));
    END IF;
  END IF;
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'petsit_index_twin(%): %', index_oid, SQLERRM;
END
$fn$;

CREATE OR REPLACE FUNCTION petsit_index_twins_on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
    PERFORM petsit_index_twin(cmd.objid);
  END LOOP;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS petsit_index_twins;
CREATE EVENT TRIGGER petsit_index_twins ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION petsit_index_twins_on_ddl();

-- An index dropped on its own (a retired one) takes its twin with it: a twin left behind would cost every write and
-- serve nothing that the remaining twins do not. (A dropped collection or database takes its twins along anyway.)
CREATE OR REPLACE FUNCTION petsit_index_twins_on_drop() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  dropped record;
BEGIN
  FOR dropped IN SELECT schema_name, object_name FROM pg_event_trigger_dropped_objects()
                  WHERE object_type = 'index' AND object_name NOT LIKE '%\_gin' LOOP
    EXECUTE format('DROP INDEX IF EXISTS %I.%I', dropped.schema_name, left(dropped.object_name, 58) || '_gin');
  END LOOP;
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'petsit_index_twins_on_drop: %', SQLERRM;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS petsit_index_twins_drop;
CREATE EVENT TRIGGER petsit_index_twins_drop ON sql_drop WHEN TAG IN ('DROP INDEX')
  EXECUTE FUNCTION petsit_index_twins_on_drop();

-- Collections created before the trigger existed.
SELECT count(petsit_index_twin(i.indexrelid))
  FROM pg_index i
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public');
