-- Fenced launch attempts (README "Launch protocol"). `attempts` is the fencing token: every
-- transition out of `launching` names the attempt it belongs to.
ALTER TABLE launches
    -- The replica holding the lease; NULL while an unclear launch waits for its next check.
    ADD COLUMN owner               text,
    -- Set by the owner check right before the POST: from then on the job may exist.
    ADD COLUMN sent_at             timestamptz,
    -- The first reconciliation read after the settle window that found no job with the marker.
    ADD COLUMN first_empty_read_at timestamptz,
    -- Reconciliation errors in a row (template deleted, 403/404); bounded, then `unknown`.
    ADD COLUMN reconcile_errors    integer NOT NULL DEFAULT 0;
