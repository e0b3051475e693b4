-- How many times a launch's POST was confirmed for sending (owner check passed). `attempts` is
-- the fencing token and is bumped by every claim, including the reconciler's; the cap on
-- relaunches (`workers.launch_max_attempts`) counts sends. Rolling update: expand only. A
-- constant default adds the column without rewriting the table; the previous release neither
-- reads nor writes it (its relaunch cap keeps counting claims, as before).
ALTER TABLE launches ADD COLUMN sends integer NOT NULL DEFAULT 0;
