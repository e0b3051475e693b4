-- Search (issue 19): case-insensitive fragments of the ticket number, sys_id, PagerDuty incident
-- id, `owner/repo#number` and delivery id, through one trigram index on an expression of columns
-- every release already writes. Nothing is backfilled and no writer changes.
-- Rolling update: expand only. The previous release never calls the function; its inserts are
-- indexed like the new release's.
-- The index is built under a lock that holds event writes back while it builds (about 10 s per
-- million events here). On a large table create it by hand first with CREATE INDEX CONCURRENTLY
-- under the same name; IF NOT EXISTS then skips it.
CREATE OR REPLACE FUNCTION aap_bridge_search_keys(ticket jsonb, delivery_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(
        coalesce(ticket ->> 'number', '') || ' ' ||
        coalesce(ticket ->> 'sys_id', '') || ' ' ||
        coalesce(ticket ->> 'incident_id', '') || ' ' ||
        coalesce(ticket ->> 'repo', '') || '#' || coalesce(ticket ->> 'number', '') || ' ' ||
        coalesce(delivery_id, ''))
$$;

-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: a database owner may
-- create it. Where it is missing or not allowed, search still works, by scanning.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm could not be created; event search will scan instead of using an index';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS events_search ON events
                 USING gin (aap_bridge_search_keys(ticket, delivery_id) gin_trgm_ops)';
    END IF;
END $$;
