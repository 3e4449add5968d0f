-- utf8mb4_bin pads with spaces when it compares: 'ALARM/t/x' and
-- 'ALARM/t/x ' were one key here although the graph keeps them apart (an
-- entity id may end with a space), so one alarm's occurrences closed the
-- other's. utf8mb4_nopad_bin compares every byte.
ALTER TABLE alarm_history
    MODIFY alarm_key    VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY resource_key VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL DEFAULT '';
ALTER TABLE alarm_severity_changes
    MODIFY alarm_key VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
ALTER TABLE alarm_causal_links
    MODIFY from_key VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY to_key   VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
