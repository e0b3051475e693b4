-- One row per (event, matching rule): planned -> launching -> launched -> finished,
-- or rejected (the controller refused), unknown (cannot tell whether it launched),
-- dry_run (no controller configured), coalesced (attached to an earlier launch).
CREATE TABLE launches (
    id              uuid PRIMARY KEY,
    event_id        uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    rule            text        NOT NULL,
    source          text        NOT NULL,
    kind            text        NOT NULL,
    ticket          jsonb       NOT NULL DEFAULT '{}',
    template_kind   text        NOT NULL CHECK (template_kind IN ('job', 'workflow')),
    template_id     bigint,
    template_name   text,
    template_org    text,
    request         jsonb       NOT NULL,
    reply           text        NOT NULL,
    report_outcome  boolean     NOT NULL DEFAULT true,
    max_concurrent  integer,
    coalesce_key    text,
    coalesced_into  uuid REFERENCES launches (id) ON DELETE SET NULL,
    state           text        NOT NULL DEFAULT 'planned'
                    CHECK (state IN ('planned', 'launching', 'launched', 'finished', 'rejected',
                                     'unknown', 'dry_run', 'coalesced')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    launching_at    timestamptz,
    lease_until     timestamptz,
    job_id          bigint,
    job_status      text,
    job_url         text,
    ignored_fields  jsonb,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    launched_at     timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    elapsed_secs    double precision,
    CONSTRAINT launches_event_rule UNIQUE (event_id, rule)
);
CREATE INDEX launches_planned ON launches (next_attempt_at) WHERE state = 'planned';
CREATE INDEX launches_launching ON launches (lease_until) WHERE state = 'launching';
CREATE INDEX launches_launched ON launches (launched_at) WHERE state = 'launched';
CREATE INDEX launches_active_rule ON launches (rule) WHERE state IN ('launching', 'launched');
CREATE INDEX launches_coalesce ON launches (coalesce_key, created_at) WHERE coalesce_key IS NOT NULL;
CREATE INDEX launches_event ON launches (event_id);

-- Outbox: one post-back per launch and phase, delivered at least once.
CREATE TABLE callbacks (
    id              uuid PRIMARY KEY,
    launch_id       uuid        NOT NULL REFERENCES launches (id) ON DELETE CASCADE,
    event_id        uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    source          text        NOT NULL,
    phase           text        NOT NULL CHECK (phase IN ('launched', 'finished')),
    request         jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CONSTRAINT callbacks_launch_phase UNIQUE (launch_id, phase)
);
CREATE INDEX callbacks_due ON callbacks (next_attempt_at) WHERE state = 'pending';
CREATE INDEX callbacks_launch ON callbacks (launch_id);
