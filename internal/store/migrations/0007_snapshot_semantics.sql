-- The apply semantics (graph/evaluator.Semantics) of the state a snapshot
-- holds, so that `causeway snapshots list` shows stale snapshots without
-- decoding them. NULL: written before this column existed; the payload
-- still records it.
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS semantics INT NULL AFTER encoding;
