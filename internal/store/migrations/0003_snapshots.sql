-- Snapshots of the processor's state (owned by package snapshot).
--
-- One row per snapshot; its blob (versioned header + zstd body, see
-- snapshot/format.go) is split into snapshot_chunks rows below
-- max_allowed_packet. Both are written in one transaction together with the
-- fencing check of the leader's raft term. checksum is the SHA-256 of the
-- compressed body, also carried in the blob's header; size is the whole
-- blob's length and raw_size the uncompressed payload's.
CREATE TABLE IF NOT EXISTS snapshots (
    id             BIGINT            NOT NULL AUTO_INCREMENT,
    seq            BIGINT            NOT NULL,
    recorded_at    DATETIME(6)       NOT NULL,
    term           BIGINT            NOT NULL,
    format_version SMALLINT UNSIGNED NOT NULL,
    encoding       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    size           BIGINT            NOT NULL,
    raw_size       BIGINT            NOT NULL,
    chunks         INT               NOT NULL,
    checksum       BINARY(32)        NOT NULL,
    created_at     DATETIME(6)       NOT NULL,
    PRIMARY KEY (id),
    KEY snapshots_seq (seq),
    KEY snapshots_recorded_at (recorded_at)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS snapshot_chunks (
    snapshot_id BIGINT   NOT NULL,
    idx         INT      NOT NULL,
    data        LONGBLOB NOT NULL,
    PRIMARY KEY (snapshot_id, idx)
) ENGINE=InnoDB;
