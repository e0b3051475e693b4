-- The dedupe key moves onto the event row, under a unique index: the hot insert path writes one
-- row and one key index instead of a second table. The `dedupe` table now holds only the keys of
-- events retention has pruned (copied in the same statement that deletes them), so a pruned
-- delivery replayed later is still a duplicate until `retention.dedupe_days`.
ALTER TABLE events ADD COLUMN dedupe_key text;   -- NULL for deliberate replays (admin, CLI)
UPDATE events e SET dedupe_key = d.dedupe_key
FROM dedupe d WHERE d.event_id = e.id AND d.source = e.source;
CREATE UNIQUE INDEX events_dedupe ON events (source, dedupe_key);
DELETE FROM dedupe d USING events e WHERE e.id = d.event_id;
