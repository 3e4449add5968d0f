-- A severity that changed in a lost range (see 0011) is known only by its
-- outcome: the occurrence open at the old head shows another severity at
-- the salvage base. The change is recorded at the base's seq and
-- recorded_at, with after_seq the old head: it happened after that record
-- and at or before the base. NULL: the seq and the time are exact.
ALTER TABLE alarm_severity_changes
    ADD COLUMN IF NOT EXISTS after_seq BIGINT NULL;
