-- Circuit breaker per rule (README "Circuit breaker"). One row per rule that has counted a job
-- end or been paused; every replica reads it, so a pause takes effect everywhere at once.
CREATE TABLE rule_pauses (
    rule       text PRIMARY KEY,
    -- Jobs in a row that ended `failed` or `error`; a `successful` one and a resume reset it.
    failures   integer     NOT NULL DEFAULT 0,
    paused_at  timestamptz,                      -- NULL: not paused
    paused_by  text CHECK (paused_by IN ('auto', 'operator')),
    reason     text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((paused_at IS NULL) = (paused_by IS NULL))
);

-- `held`: matched while its rule was paused, never sent; `dropped`: an operator dropped it on
-- resume (final).
ALTER TABLE launches DROP CONSTRAINT launches_state_check;
ALTER TABLE launches ADD CONSTRAINT launches_state_check
    CHECK (state IN ('planned', 'launching', 'launched', 'finished', 'rejected', 'unknown',
                     'dry_run', 'coalesced', 'held', 'dropped'));
ALTER TABLE launches ADD COLUMN held_at timestamptz;
CREATE INDEX launches_held ON launches (rule, created_at) WHERE state = 'held';

-- The ticket is told when a launch is held, and again if it is dropped.
ALTER TABLE callbacks DROP CONSTRAINT callbacks_phase_check;
ALTER TABLE callbacks ADD CONSTRAINT callbacks_phase_check
    CHECK (phase IN ('launched', 'finished', 'held', 'dropped'));
