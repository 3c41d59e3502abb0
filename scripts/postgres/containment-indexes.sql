-- FerretDB v1 on PostgreSQL looks documents up with containment (`_jsonb->'field' @> value`), but
-- the indexes it creates are btree indexes on `_jsonb->'field'`, which containment cannot use
-- (FerretDB issue #4646): every lookup and update by _id read the whole collection, so each job's
-- write grew slower as jobs accumulated. Here every btree index FerretDB creates on a field gets a
-- GIN twin on the same expression, which containment can use. Applied at every start (idempotent):
-- the event trigger covers collections and indexes created later; the last statement covers those
-- that already exist.

SET client_min_messages = warning; -- "does not exist, skipping" at every start is not news

CREATE OR REPLACE FUNCTION apex_add_containment_indexes(btree_index oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  index_info record;
  expression text;
BEGIN
  SELECT i.indrelid::regclass AS tbl, i.indnatts, c.relname, a.amname
    INTO index_info
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
   WHERE i.indexrelid = btree_index;
  IF index_info IS NULL OR index_info.amname <> 'btree' THEN
    RETURN; -- includes the GIN indexes made here, whose creation fires the trigger again
  END IF;
  FOR k IN 1..index_info.indnatts LOOP
    expression := pg_get_indexdef(btree_index, k, true);
    IF expression ~ '^\(_jsonb -> ''[^'']*''::text\)$' THEN
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%s jsonb_path_ops)',
                     left(index_info.relname, 54) || '_' || k || '_gin', index_info.tbl, expression);
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION apex_on_create_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  created record;
BEGIN
  FOR created IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
    PERFORM apex_add_containment_indexes(created.objid);
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS apex_containment_indexes;
CREATE EVENT TRIGGER apex_containment_indexes ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION apex_on_create_index();

SELECT apex_add_containment_indexes(i.indexrelid)
  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast');

-- FerretDB sends the field name as a parameter (`_jsonb->$1 @> $2`); only a plan made for the
-- actual values matches the index expression, so never fall back to a generic plan.
DO $$ BEGIN
  EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database());
END $$;
