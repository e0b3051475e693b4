-- Which rules decided an event (`Mappings::version`, a digest of the mapping files), whether the
-- commit writer decided it at ingest or the dispatcher later. NULL: pending, ignored, or decided
-- before this column existed.
ALTER TABLE events ADD COLUMN rules_version text;
