-- A window in the middle of a long alarm history read about half of
-- alarm_history: the occurrences active at some moment of [from, to] are
-- those raised at or before `to` and not cleared at or before `from`, and
-- each of the two time indexes bounds one side only (raised_at <= to: all
-- older rows; cleared_at > from: all newer ones), then the rows were
-- sorted. The rows raised inside the window are a range of raised_at; the
-- hard ones were raised before it and cleared after its start. span_class
-- is the binary order of magnitude of an occurrence's length in seconds
-- (floor(log2), exactly, as the length of its binary digits; NULL while
-- it is active): an occurrence of class k lasted less than 2^(k+1) s, so
-- if it was active at `from` it was raised after from - 2^(k+1) s. By
-- (span_class, raised_at) each class is one short range, and the rows
-- read are about those returned (history.List). Stored and computed by
-- the server, so that no write path sets it. Re-runnable (IF NOT EXISTS);
-- it rebuilds the table.
ALTER TABLE alarm_history
    ADD COLUMN IF NOT EXISTS span_class TINYINT AS
        (LENGTH(BIN(GREATEST(1, TIMESTAMPDIFF(SECOND, raised_at, cleared_at)))) - 1) STORED,
    ADD KEY IF NOT EXISTS alarm_history_span (span_class, raised_at);
