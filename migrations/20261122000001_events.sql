-- Inbox: one row per authentic delivery, deduplicated per source.
CREATE TABLE events (
    id            uuid PRIMARY KEY,
    source        text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('github', 'pagerduty', 'servicenow')),
    delivery_id   text        NOT NULL,
    event_type    text        NOT NULL,
    category      text,
    ticket        jsonb       NOT NULL DEFAULT '{}',
    headers       jsonb       NOT NULL DEFAULT '{}',
    payload       json        NOT NULL, -- json keeps the text as sent and is cheaper to store than jsonb
    received_at   timestamptz NOT NULL DEFAULT now(),
    state         text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'dispatched', 'unmapped', 'ignored', 'failed')),
    state_reason  text,
    decision      jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_source_delivery UNIQUE (source, delivery_id)
);

-- The dispatcher claims pending events oldest first.
CREATE INDEX events_pending ON events (received_at) WHERE state = 'pending';
CREATE INDEX events_received_at ON events (received_at);
