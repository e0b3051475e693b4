-- Polls in a row in which the controller no longer listed a launched job (deleted, or no longer
-- visible to the service user). After a few, the launch is finished as `missing`.
ALTER TABLE launches ADD COLUMN missing_polls integer NOT NULL DEFAULT 0;
