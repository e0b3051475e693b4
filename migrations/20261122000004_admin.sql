-- Admin API: a replayed event is a new row that points at the one it copies.
-- ON DELETE SET NULL: deleting an old event (retention) keeps its replays.
ALTER TABLE events ADD COLUMN replay_of uuid REFERENCES events (id) ON DELETE SET NULL;
CREATE INDEX events_replay_of ON events (replay_of) WHERE replay_of IS NOT NULL;
-- The admin list of callbacks, newest first, optionally by state.
CREATE INDEX callbacks_state_created ON callbacks (state, created_at);
