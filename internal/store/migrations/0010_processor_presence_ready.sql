-- A processor's presence row also says whether it is ready (loaded and
-- caught up with the log) and the seq it has applied, so that a leader
-- that stops hands leadership to a node that can serve at once rather
-- than one still loading. Rows of earlier releases read as not ready.
ALTER TABLE processor_presence
    ADD COLUMN IF NOT EXISTS ready BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN IF NOT EXISTS applied_seq BIGINT NOT NULL DEFAULT 0;
