-- What a rule wants when the controller answers a launch with `ignored_fields` (the template does
-- not prompt for them): `warn` keeps the job and tells the ticket; `fail` cancels it.
ALTER TABLE launches ADD COLUMN on_ignored_fields text NOT NULL DEFAULT 'warn'
    CHECK (on_ignored_fields IN ('warn', 'fail'));

-- `oauth2_app` mode keeps its access token here too (so restarts reuse it instead of creating a
-- new ~1000-year token each time), with the refresh token the grant returned.
ALTER TABLE controller_tokens ADD COLUMN refresh_token text;
