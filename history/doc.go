// Package history keeps the alarm history in MariaDB: one row per alarm
// occurrence (raised, severity changes, cleared — by seq and by time) and
// one per period a `causes` link held, so that `causeway alarms history`
// and `causeway alarms stats` answer from the database without replaying
// the log.
//
// Detection is pure: Detect turns one record's graph changes into Items,
// reusing emit.Transitions (the same raised / cleared / severity-changed
// transitions that notifications are made of), plus the `causes` edges that
// started or ended. Items carry keys derived from the log — the alarm's key
// (category/type/external id) and the seq — never a wall-clock time or a
// counter, so the same log gives the same rows on every node.
//
// Write is the leader's fenced write (invariant 4 of DESIGN.md): one
// transaction that checks the raft term with store.CheckFence, skips the
// items at or below the stored history head, inserts occurrences and link
// starts with INSERT IGNORE, closes open occurrences and links with
// conditional UPDATEs (only the open one raised before the clearing seq),
// and raises the head. A new leader writing the same seqs again after a
// failover therefore changes nothing.
//
// # Call contract (processor)
//
// Every processor node, leader or standby, for each record in seq order:
//
//	res, err := engine.ApplyResult(rec)                   // evaluator.Engine
//	items := history.Detect(rec, res.Changes, engine.Graph())
//	pending.Items = append(pending.Items, items...)
//	pending.Seq = rec.Seq
//
// Detect must run right after the record is applied and before the next
// one (it reads the alarm's resource from the graph as of that seq).
// Changes must be the record's complete changes, in the order the graph
// and the evaluator made them.
//
// The leader flushes pending with history.Write(ctx, db, term, pending)
// after each batch of records and clears it on success; an error wrapping
// store.ErrFenced means it was deposed (drop pending, stop leading). Any
// other error leaves pending as it is, to be written again with the next
// batch: Write is idempotent. A standby keeps pending and prunes the items
// at or below history.Head(ctx, db), read now and then (Batch.Prune); when
// it wins an election it calls Write with what it holds, covering every
// seq after the head — no gap, no duplicate. A node starting cold from a
// snapshot at seq s has no items for seqs at or before s: if the head is
// below s when it comes to write, the history of (head, s] is missing;
// the processor should log that (compare Head with the snapshot's seq).
//
// # Lost ranges
//
// When no leader wrote the history for longer than the event log's
// retention, a new leader cannot rebuild the items of the records after
// the head: the oldest it can rebuild from is the oldest snapshot the
// retained log follows (the salvage base). It then writes, with the items
// after the base, the state at the base (Batch.Reconcile, made by
// ActiveAt from the graph restored from that snapshot), and Write first
// makes the history agree with it, in the same fenced transaction: it
// closes the open occurrences and links that the state no longer holds,
// opens one for each alarm and link the state holds and the history does
// not, and brings the severity of those still open to the state's. When
// those rows began or ended is unknown — after the old head, at or before
// the base — so they take the base's seq and recorded time (the latest it
// can have been, from the log, never the wall clock) and record the old
// head in their *_after_seq column, which marks the bound approximate
// (Occurrence.RaisedApprox, ClearedApprox; Link.StartApprox, EndApprox).
// An alarm that the base holds on another vertex than the open occurrence
// recorded (cleared, purged and raised again in the lost range) gets its
// occurrence closed and a new one opened, links likewise. What happened
// inside the lost range and left no trace at the base (an alarm raised and
// cleared there, or cleared and raised again on the same vertex) is lost.
// The state is applied only above the stored head, and only rows that
// disagree with it change, so a second write of the same batch changes
// nothing.
//
// # Retention
//
// Prune deletes occurrences and links that ended, and severity changes
// recorded, before a boundary, in short fenced transactions. The leader
// calls it with the same boundary as the event log's retention
// (Config.Retention, default 30 days, like the log's): history never
// outlives the events it could be rebuilt from by more than that. Active
// occurrences are kept however old, with their severity changes.
//
// Prune first stores its boundary (raised, never lowered, fenced like the
// deletes), and the answers carry it: List's Page, and CoverageOf for
// Stats and Links, say from when the history is complete (CompleteFrom)
// and whether the window starts before that (Incomplete), and likewise
// for the oldest event the log retains (LogFrom, LogTruncated). A window
// before the boundary lists only the alarms active across it; it must not
// be shown as the whole of what was active then.
package history
