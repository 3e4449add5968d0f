-- alarm_history_lost_ranges: one row per lost range a leader salvaged (see
-- 0011): the records after after_seq (the history's head then) through seq
-- (the salvage base) were past retention, and the history was made to
-- agree with the state at seq instead. What was active at a moment inside
-- the range is not known (an alarm raised and cleared there is missing,
-- the rows opened or closed there show the base's time), so a window of
-- the history that overlaps it is approximate. at is seq's recorded time;
-- after_at a time at or before after_seq's (the latest time the history
-- held at or below after_seq: the range began after it), NULL when the
-- history held nothing. Written in the salvage's fenced transaction.
CREATE TABLE IF NOT EXISTS alarm_history_lost_ranges (
    after_seq BIGINT      NOT NULL,
    seq       BIGINT      NOT NULL,
    after_at  DATETIME(6) NULL,
    at        DATETIME(6) NOT NULL,
    term      BIGINT      NOT NULL,
    PRIMARY KEY (seq, after_seq),
    KEY alarm_history_lost_ranges_at (at)
) ENGINE=InnoDB;

-- The ranges salvaged before this table: each pair (after_seq, seq) that
-- an approximate row holds. Re-runnable (INSERT IGNORE).
INSERT IGNORE INTO alarm_history_lost_ranges (after_seq, seq, at, term)
SELECT r.after_seq, r.seq, MAX(r.at), 0 FROM (
    SELECT raised_after_seq AS after_seq, raised_seq AS seq, raised_at AS at FROM alarm_history WHERE raised_after_seq IS NOT NULL
    UNION ALL SELECT cleared_after_seq, cleared_seq, cleared_at FROM alarm_history WHERE cleared_after_seq IS NOT NULL
    UNION ALL SELECT after_seq, seq, recorded_at FROM alarm_severity_changes WHERE after_seq IS NOT NULL
    UNION ALL SELECT start_after_seq, start_seq, start_at FROM alarm_causal_links WHERE start_after_seq IS NOT NULL
    UNION ALL SELECT end_after_seq, end_seq, end_at FROM alarm_causal_links WHERE end_after_seq IS NOT NULL
) r GROUP BY r.after_seq, r.seq;
UPDATE alarm_history_lost_ranges l SET l.after_at = NULLIF(GREATEST(
    COALESCE((SELECT h.raised_at FROM alarm_history h WHERE h.raised_seq <= l.after_seq ORDER BY h.raised_seq DESC LIMIT 1), '1000-01-01'),
    COALESCE((SELECT h.cleared_at FROM alarm_history h WHERE h.cleared_at <= l.at AND h.cleared_seq <= l.after_seq ORDER BY h.cleared_at DESC LIMIT 1), '1000-01-01'),
    COALESCE((SELECT c.recorded_at FROM alarm_severity_changes c WHERE c.recorded_at <= l.at AND c.seq <= l.after_seq ORDER BY c.recorded_at DESC LIMIT 1), '1000-01-01'),
    COALESCE((SELECT k.end_at FROM alarm_causal_links k WHERE k.end_at <= l.at AND k.end_seq <= l.after_seq ORDER BY k.end_at DESC LIMIT 1), '1000-01-01')
), '1000-01-01')
WHERE l.after_at IS NULL AND l.term = 0;
