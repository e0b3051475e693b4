-- Named operators (issue 19): console sessions kept in the database, so logging out ends a
-- session on every replica, and the audit trail of operator actions.
-- Rolling update: new tables, expand only. The previous release neither reads nor writes them.
-- Its console cookies are signed, not stored, so a console user whose requests move between an
-- old and a new replica during the rollout is asked to log in again; nothing else changes.
CREATE TABLE IF NOT EXISTS console_sessions (
    -- SHA-256 of the cookie's secret: the secret itself is never stored.
    id_hash     bytea       PRIMARY KEY,
    username    text        NOT NULL,
    role        text        NOT NULL,
    csrf        text        NOT NULL,
    client      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX IF NOT EXISTS console_sessions_expires ON console_sessions (expires_at);

CREATE TABLE IF NOT EXISTS audit (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    -- A controller user name, `admin-token` (the API or a token login) or `cli`.
    actor   text        NOT NULL,
    role    text,
    action  text        NOT NULL,
    -- What was acted on: an event or callback id, a rule or source name.
    target  text,
    detail  jsonb,
    client  text
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, id) WHERE target IS NOT NULL;
-- The login rate limit counts recent failures per client address and per user name.
CREATE INDEX IF NOT EXISTS audit_failed_client ON audit (client, at) WHERE action = 'login.failed';
CREATE INDEX IF NOT EXISTS audit_failed_actor ON audit (actor, at) WHERE action = 'login.failed';
