-- FerretDB's data belongs to FerretDB's own role, which is not a superuser, so no MongoDB client can
-- reach a superuser's powers (COPY ... TO PROGRAM, reading server files). A database made before
-- the services authenticated, or restored by the superuser (pg_restore --no-owner), belonged to the
-- superuser: this hands it and everything in it over. Applied at every start (idempotent); psql
-- sets :role.

SET client_min_messages = warning;
SET apex.ferretdb_role TO :'role';

DO $$
DECLARE
  owner_role text := current_setting('apex.ferretdb_role');
  owner_oid oid := (SELECT oid FROM pg_roles WHERE rolname = owner_role);
  item record;
BEGIN
  EXECUTE format('ALTER DATABASE %I OWNER TO %I', current_database(), owner_role);
  FOR item IN SELECT nspname FROM pg_namespace
               WHERE nspname NOT IN ('information_schema', 'public') AND nspname NOT LIKE 'pg\_%' AND nspowner <> owner_oid LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', item.nspname, owner_role);
  END LOOP;
  -- Tables carry their indexes with them; FerretDB makes no sequences.
  FOR item IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\_%'
                 AND c.relowner <> owner_oid LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO %I', item.rel, owner_role);
  END LOOP;
END $$;
