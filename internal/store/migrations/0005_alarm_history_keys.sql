-- Alarm keys are category/type/external id: up to 8 + 255 + 255 + 2
-- characters, over the 512 the history's key columns held, which
-- truncated the longest keys (so their occurrences and links never
-- closed). The indexes keep their 191-character prefixes.
ALTER TABLE alarm_history
    MODIFY alarm_key    VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY resource_key VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '';
ALTER TABLE alarm_severity_changes
    MODIFY alarm_key VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE alarm_causal_links
    MODIFY from_key VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY to_key   VARCHAR(600) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
