-- Deliveries are deduplicated on what the signature covers (GitHub: SHA-256 of the body;
-- PagerDuty: event.id; ServiceNow: the record's identity, or a signed delivery header), never on
-- an unsigned header. Rows outlive their events (no foreign key; retention.dedupe_days), so a
-- delivery pruned from `events` and replayed later is still a duplicate.
CREATE TABLE dedupe (
    source     text        NOT NULL,
    dedupe_key text        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    event_id   uuid        NOT NULL,   -- the first event stored for this key (maybe pruned since)
    PRIMARY KEY (source, dedupe_key)
);
-- BRIN: keys arrive in first_seen order, and a BRIN index costs next to nothing per insert.
CREATE INDEX dedupe_first_seen ON dedupe USING brin (first_seen);

-- The delivery id comes from an unsigned header, so it is information only: a sender (or an
-- attacker) reusing one must not make a new, authentic event look like a duplicate.
ALTER TABLE events DROP CONSTRAINT events_source_delivery;

-- Keys of the events already stored, computed from what was stored. A ServiceNow field may be a
-- plain value or a {"value": ...} object. GitHub keys hash the stored JSON, which is the body as
-- sent except for form-encoded deliveries (those stored before this migration are not covered).
CREATE FUNCTION pg_temp.sn_field(p json, k text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT NULLIF(CASE json_typeof(p -> k)
                      WHEN 'object' THEN p -> k ->> 'value'
                      WHEN 'string' THEN p ->> k
                      WHEN 'number' THEN p ->> k
                  END, '')
$$;

INSERT INTO dedupe (source, dedupe_key, first_seen, event_id)
SELECT source, dedupe_key, received_at, id
FROM (
    SELECT source, received_at, id,
           CASE kind
               WHEN 'github' THEN 'sha256:' || encode(sha256(convert_to(payload::text, 'UTF8')), 'hex')
               WHEN 'pagerduty' THEN NULLIF(payload -> 'event' ->> 'id', '')
               WHEN 'servicenow' THEN
                   CASE WHEN pg_temp.sn_field(payload, 'sys_id') IS NOT NULL
                         AND (pg_temp.sn_field(payload, 'sys_updated_on') IS NOT NULL
                              OR pg_temp.sn_field(payload, 'sys_mod_count') IS NOT NULL)
                   THEN pg_temp.sn_field(payload, 'sys_id')
                        || COALESCE('@' || pg_temp.sn_field(payload, 'sys_updated_on'), '')
                        || COALESCE('#' || pg_temp.sn_field(payload, 'sys_mod_count'), '')
                   END
           END AS dedupe_key
    FROM events
    WHERE replay_of IS NULL
    ORDER BY received_at
) keyed
WHERE dedupe_key IS NOT NULL
ON CONFLICT (source, dedupe_key) DO NOTHING;
