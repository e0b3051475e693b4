-- The deliveries log (issue 19): one row per request to /hooks/{source}, refused ones included,
-- never with its body. Informational and bounded: the writer trims it to
-- `retention.deliveries_max_rows` and `retention.deliveries_max_age_days`; no foreign key, so
-- event retention and this table never wait on each other.
--
-- UNLOGGED, and no index but the primary key: it is written once per delivery, so its cost is
-- ingest's cost. Unlogged it writes no WAL (the bench measured the logged table with three
-- indexes at half the ingest rate); the price is that a Postgres crash empties it and standbys
-- do not have it. The events themselves are logged as ever. Its reads scan at most
-- `deliveries_max_rows` rows, newest first by the key.
--
-- Rolling update: a new table, expand only. The previous release neither reads nor writes it;
-- while both run, only the new release's requests are logged.
CREATE UNLOGGED TABLE IF NOT EXISTS deliveries (
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
