-- When no leader wrote the alarm history for longer than the event log's
-- retention, a new leader cannot rebuild the records between the history's
-- head and the oldest snapshot the retained log follows (the salvage base):
-- their events are gone. It makes the history agree with the state at the
-- base instead: it closes the occurrences and links that ended in that lost
-- range and opens those that began in it. When such a row began or ended
-- is not known, only that it was after the old head and at or before the
-- base: *_seq and *_at then hold the base's seq and recorded_at (the latest
-- it can have been) and *_after_seq the old head. NULL: the seq and the
-- time are exact.
ALTER TABLE alarm_history
    ADD COLUMN IF NOT EXISTS raised_after_seq  BIGINT NULL,
    ADD COLUMN IF NOT EXISTS cleared_after_seq BIGINT NULL;
ALTER TABLE alarm_causal_links
    ADD COLUMN IF NOT EXISTS start_after_seq BIGINT NULL,
    ADD COLUMN IF NOT EXISTS end_after_seq   BIGINT NULL;
