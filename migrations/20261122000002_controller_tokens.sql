-- The managed controller token, shared by every replica so one token serves them all.
-- The token value is stored because the controller shows it only once; restrict access to this
-- database accordingly.
CREATE TABLE controller_tokens (
    controller_key text PRIMARY KEY,          -- base URL + service user
    token_id       bigint      NOT NULL,
    token          text        NOT NULL,
    endpoint       text        NOT NULL,      -- tokens endpoint it was created at (for DELETE)
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
