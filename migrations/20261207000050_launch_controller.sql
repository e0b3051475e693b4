-- Several controllers (issue 21): the controller each launch goes to, by its configured name.
-- Expand only: every existing launch, and every launch a previous release writes while both
-- run, belongs to `default` (that release knows only one controller). Nothing is dropped.
ALTER TABLE launches ADD COLUMN controller text NOT NULL DEFAULT 'default';
