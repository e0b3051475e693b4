-- Approval from the ticket (issue 22). Expand only: new launch states and columns, a new
-- callback phase list and a new table. A previous release never plans `awaiting_approval`
-- (its rules have no `approval:`), claims only `planned` rows, and writes only the phases it
-- knows, so it keeps working beside this one; it would list an awaiting launch's state as a
-- word it does not know, which is why its console should be gone before rules use approval.
ALTER TABLE launches DROP CONSTRAINT launches_state_check;
ALTER TABLE launches ADD CONSTRAINT launches_state_check
    CHECK (state IN ('planned', 'launching', 'launched', 'finished', 'rejected', 'unknown',
                     'dry_run', 'coalesced', 'held', 'dropped',
                     'awaiting_approval', 'denied', 'expired'));
-- What the rule's `approval:` said when the launch was planned (approvers, self-approval,
-- who raised the event), so a reload does not change an open request.
ALTER TABLE launches ADD COLUMN approval jsonb;
-- The ticket a command must come from: `source|ticket identity`.
ALTER TABLE launches ADD COLUMN approval_ticket text;
ALTER TABLE launches ADD COLUMN approval_expires_at timestamptz;
ALTER TABLE launches ADD COLUMN approved_by text;
ALTER TABLE launches ADD COLUMN approved_at timestamptz;
ALTER TABLE launches ADD COLUMN denied_by text;
CREATE INDEX launches_awaiting ON launches (approval_ticket) WHERE state = 'awaiting_approval';
CREATE INDEX launches_approval_expiry ON launches (approval_expires_at)
    WHERE state = 'awaiting_approval';
CREATE INDEX launches_approval_ticket ON launches (approval_ticket, created_at)
    WHERE approval_ticket IS NOT NULL;

-- The ticket is told what waits for approval, what refused a command, and how it ended.
ALTER TABLE callbacks DROP CONSTRAINT callbacks_phase_check;
ALTER TABLE callbacks ADD CONSTRAINT callbacks_phase_check
    CHECK (phase IN ('launched', 'finished', 'held', 'dropped',
                     'approval', 'approval_refused', 'approval_decided', 'approval_late'));

-- `/approve` and `/deny` as they arrived (one row per event, so a redelivery is one command),
-- applied by the approvals worker of any replica.
CREATE TABLE approval_commands (
    event_id    uuid        PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    ticket      text        NOT NULL,
    verb        text        NOT NULL CHECK (verb IN ('approve', 'deny')),
    actor       text        NOT NULL,
    state       text        NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'applied', 'refused', 'moot')),
    outcome     text,
    attempts    integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approval_commands_pending ON approval_commands (next_attempt_at)
    WHERE state = 'pending';
