-- Alarm keys are category/type/external id, and a type may hold "/": type
-- "a/b" with id "c" and type "a" with id "b/c" were one key, so one
-- alarm's clear could close the other's occurrence. Keys now escape "%"
-- and "/" in the type as "%25" and "%2F" (graph.Vertex.Key). This moves
-- the rows written before to their new keys: each occurrence of an alarm
-- whose type holds either character (its type and id are stored beside
-- the key), and the severity changes and causal links under its old key,
-- unless another alarm's rows had that key too: which alarm those belong
-- to cannot be told, and they stay. Row ids, derived from the old keys,
-- stay: the history is never written again below its head. Re-runnable: a
-- key already moved no longer matches its old form.
--
-- An escaped type is up to three times as long (255 "/" are 765
-- characters), so the key columns grow from 600 to 1100 characters
-- (category, escaped type, id and two slashes: at most 1031); their
-- indexes keep their 191-character prefixes.
ALTER TABLE alarm_history
    MODIFY alarm_key    VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY resource_key VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL DEFAULT '';
ALTER TABLE alarm_severity_changes
    MODIFY alarm_key VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
ALTER TABLE alarm_causal_links
    MODIFY from_key VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY to_key   VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
DROP TEMPORARY TABLE IF EXISTS alarm_key_moves;
CREATE TEMPORARY TABLE alarm_key_moves (
    old_key VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    new_key VARCHAR(1100) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    KEY (old_key(191))
) ENGINE=InnoDB;
INSERT INTO alarm_key_moves (old_key, new_key)
SELECT k.old_key, MIN(k.new_key) FROM (
    SELECT CONCAT('ALARM/', alarm_type, '/', alarm_id) COLLATE utf8mb4_nopad_bin AS old_key,
           CONCAT('ALARM/', REPLACE(REPLACE(alarm_type, '%', '%25'), '/', '%2F'), '/', alarm_id) COLLATE utf8mb4_nopad_bin AS new_key
    FROM alarm_history
    WHERE LOCATE('%', alarm_type) > 0 OR LOCATE('/', alarm_type) > 0
) k
GROUP BY k.old_key
HAVING COUNT(DISTINCT k.new_key) = 1;
DELETE FROM alarm_key_moves WHERE old_key IN (
    SELECT alarm_key FROM alarm_history WHERE LOCATE('%', alarm_type) = 0 AND LOCATE('/', alarm_type) = 0);
UPDATE alarm_history
SET alarm_key = CONCAT('ALARM/', REPLACE(REPLACE(alarm_type COLLATE utf8mb4_nopad_bin, '%', '%25'), '/', '%2F'), '/',
    alarm_id COLLATE utf8mb4_nopad_bin)
WHERE alarm_key = CONCAT('ALARM/', alarm_type COLLATE utf8mb4_nopad_bin, '/', alarm_id COLLATE utf8mb4_nopad_bin)
  AND (LOCATE('%', alarm_type) > 0 OR LOCATE('/', alarm_type) > 0);
UPDATE alarm_history
SET resource_key = CONCAT(SUBSTRING_INDEX(resource_key, '/', 1), '/',
    REPLACE(REPLACE(resource_type COLLATE utf8mb4_nopad_bin, '%', '%25'), '/', '%2F'), '/',
    resource_id COLLATE utf8mb4_nopad_bin)
WHERE resource_key = CONCAT(SUBSTRING_INDEX(resource_key, '/', 1), '/',
    resource_type COLLATE utf8mb4_nopad_bin, '/', resource_id COLLATE utf8mb4_nopad_bin)
  AND (LOCATE('%', resource_type) > 0 OR LOCATE('/', resource_type) > 0);
UPDATE alarm_severity_changes s JOIN alarm_key_moves m ON s.alarm_key = m.old_key
SET s.alarm_key = m.new_key;
UPDATE alarm_causal_links l JOIN alarm_key_moves m ON l.from_key = m.old_key
SET l.from_key = m.new_key;
UPDATE alarm_causal_links l JOIN alarm_key_moves m ON l.to_key = m.old_key
SET l.to_key = m.new_key;
DROP TEMPORARY TABLE alarm_key_moves;
