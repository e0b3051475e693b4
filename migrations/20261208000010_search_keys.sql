-- Search keys that are cheap to index (issue 20). The trigram index of 20261207000030 also held
-- the delivery id, and a real delivery id is a random GUID (GitHub, PagerDuty): some 38 trigrams
-- no other event shares. With such ids that index cost more Postgres CPU per stored event than
-- the rest of the insert, and its pending-list clean-ups stalled the commit writer for tens of
-- milliseconds (README, "Ingest levers"). Random identifiers (delivery ids, ServiceNow sys_ids)
-- are now found by their beginning through B-trees; the trigram index keeps the words people
-- search by fragment: ticket number, PagerDuty incident id, owner/repo#number.
--
-- Rolling update: the new indexes are on columns every release writes, and nothing is
-- backfilled. The old trigram index is dropped. That is no contraction of the schema: every
-- statement of the previous release still runs, and its search (which calls
-- aap_bridge_search_keys, kept until a later release) returns the same rows, by scanning, until
-- its replicas are gone. The builds hold event writes for as long as they take (seconds per
-- million events); on a large table create the three indexes by hand first with
-- CREATE INDEX CONCURRENTLY under the same names; IF NOT EXISTS then skips them.

-- The part of an id after its last ':', lower-cased: a GitHub delivery id is stored
-- `hook_id:guid`, and people paste the GUID.
CREATE OR REPLACE FUNCTION aap_bridge_id_key(id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(split_part(id, ':', -1))
$$;

CREATE OR REPLACE FUNCTION aap_bridge_ticket_keys(ticket jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(
        coalesce(ticket ->> 'number', '') || ' ' ||
        coalesce(ticket ->> 'incident_id', '') || ' ' ||
        coalesce(ticket ->> 'repo', '') || '#' || coalesce(ticket ->> 'number', ''))
$$;

-- Byte order ("C"), so a prefix is the range [key, key || U+10FFFF) in any database locale.
CREATE INDEX IF NOT EXISTS events_delivery_key ON events (aap_bridge_id_key(delivery_id) COLLATE "C");
CREATE INDEX IF NOT EXISTS events_sys_id_key ON events ((lower(ticket ->> 'sys_id')) COLLATE "C")
    WHERE kind = 'servicenow';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS events_ticket_search ON events
                 USING gin (aap_bridge_ticket_keys(ticket) gin_trgm_ops)';
    END IF;
END $$;

DROP INDEX IF EXISTS events_search;
