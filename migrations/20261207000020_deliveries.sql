-- The deliveries log (issue 19): one row per request to /hooks/{source}, refused ones included,
-- never with its body. Informational and bounded: the writer trims it to
-- `retention.deliveries_max_rows` and `retention.deliveries_max_age_days`; no foreign key, so
-- event retention and this table never wait on each other.
-- Rolling update: a new table, expand only. The previous release neither reads nor writes it;
-- while both run, only the new release's requests are logged.
CREATE TABLE IF NOT EXISTS deliveries (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    -- As requested, even when no such source is configured (then `known` is false).
    source       text        NOT NULL,
    known        boolean     NOT NULL,
    client       text,
    delivery_id  text,
    status       smallint    NOT NULL,
    outcome      text        NOT NULL,
    reason       text,
    size         bigint,
    event_id     uuid
);
-- The page and the API list newest first, by source or by outcome.
CREATE INDEX IF NOT EXISTS deliveries_source ON deliveries (source, id);
CREATE INDEX IF NOT EXISTS deliveries_outcome ON deliveries (outcome, id);
-- Age trimming.
CREATE INDEX IF NOT EXISTS deliveries_at ON deliveries (at);
