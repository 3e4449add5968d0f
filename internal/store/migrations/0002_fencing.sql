-- Raft-term fences for leader-only writes (invariant 4 of DESIGN.md): every
-- leader write checks and raises its row with store.CheckFence inside its
-- own transaction, so a deposed leader's late write fails.
CREATE TABLE IF NOT EXISTS fencing (
    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    term BIGINT      NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB;
