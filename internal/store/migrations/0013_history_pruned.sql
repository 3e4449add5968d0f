-- alarm_history_pruned is the boundary the history's retention (Prune)
-- last deleted before (one row, name 'history'): the occurrences and links
-- that ended before it, and the severity changes recorded before it, may
-- be gone, so a window of the history that starts before it is
-- incomplete. It is raised before the rows go, in a fenced transaction,
-- and never lowered: a longer retention set later does not bring the rows
-- back.
CREATE TABLE IF NOT EXISTS alarm_history_pruned (
    name          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    pruned_before DATETIME(6) NOT NULL,
    term          BIGINT      NOT NULL,
    updated_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB;
