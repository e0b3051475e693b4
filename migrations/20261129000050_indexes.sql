-- Indexes that earn their cost (issue 13). Plain CREATE INDEX: they are built at upgrade, under a
-- lock that holds writes to the table back while they build. On a large table, create them by
-- hand first with CREATE INDEX CONCURRENTLY under the same names; IF NOT EXISTS then skips them.

-- Retention deletes events; `callbacks.event_id REFERENCES events ON DELETE CASCADE` then runs
-- `DELETE FROM callbacks WHERE event_id = $1` per deleted event, and retention's own
-- `NOT EXISTS (… callbacks c WHERE c.event_id = e.id …)` looks callbacks up by event. Without
-- an index each of those is a sequential scan of `callbacks`.
CREATE INDEX IF NOT EXISTS callbacks_event ON callbacks (event_id);

-- Deleting a launch (the cascade from its event) runs
-- `UPDATE launches SET coalesced_into = NULL WHERE coalesced_into = $1` (ON DELETE SET NULL):
-- a sequential scan of `launches` per deleted launch without this. Partial: only coalesced
-- launches have the column set, so other launches pay nothing for it.
CREATE INDEX IF NOT EXISTS launches_coalesced_into ON launches (coalesced_into)
    WHERE coalesced_into IS NOT NULL;

-- Indexes no query needs, paid for by every launch and every callback inserted: the unique
-- constraints `launches_event_rule (event_id, rule)` and `callbacks_launch_phase (launch_id,
-- phase)` lead with the same column and serve every lookup (and the cascades) by it.
DROP INDEX IF EXISTS launches_event;
DROP INDEX IF EXISTS callbacks_launch;
