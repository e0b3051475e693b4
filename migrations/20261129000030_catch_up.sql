-- Catch-up (issue 12): how each event arrived, and what the catch-up passes remember.

-- `delivered` by the sender; `redelivered` by GitHub at this bridge's request; `caught_up` from
-- a ServiceNow Table API poll. A constant default adds the column without rewriting the table;
-- NOT VALID skips a scan under the exclusive lock (every existing row has the default), while
-- new and updated rows are checked all the same.
ALTER TABLE events ADD COLUMN arrival text NOT NULL DEFAULT 'delivered';
ALTER TABLE events ADD CONSTRAINT events_arrival
    CHECK (arrival IN ('delivered', 'redelivered', 'caught_up')) NOT VALID;

-- ServiceNow catch-up skips a record whose sys_id the bridge already has an event for (with the
-- same category). Partial: GitHub and PagerDuty inserts pay nothing for it.
CREATE INDEX events_servicenow_sys_id ON events (source, (ticket ->> 'sys_id'))
    WHERE kind = 'servicenow';

-- Where the last complete pass got to, per source and scope (a GitHub hook, a ServiceNow table).
CREATE TABLE catch_up_checkpoints (
    source     text        NOT NULL,
    scope      text        NOT NULL,
    checkpoint timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, scope)
);

-- GitHub deliveries this bridge asked GitHub to redeliver, so each is asked for once. The row is
-- written before the request, so a redelivery arriving at once is already recognised.
-- delivery_id is `{hook_id}:{guid}`, as events.delivery_id holds it.
CREATE TABLE catch_up_redeliveries (
    source       text        NOT NULL,
    delivery_id  text        NOT NULL,
    github_id    bigint      NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    result       text        NOT NULL DEFAULT 'requesting',
    PRIMARY KEY (source, delivery_id)
);
