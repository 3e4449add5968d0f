// Package persister moves events from the bus into the one ordered log:
// it consumes the persist queue (causeway.persist), batches deliveries by
// size and time, appends each batch in one transaction (store.Log.Append:
// dedup by event_id, seq from the counter row, recorded_at never
// decreasing), acks the batch only after the commit, and then publishes
// the sequenced batch on the causeway.sequenced fanout.
//
// Invariants it keeps (1 and 2 of DESIGN.md):
//
//   - Nothing accepted is lost: a delivery is acked only once its event is
//     committed, found already stored, or dead-lettered with its reason.
//     While MariaDB is down the persister retries the same batch with
//     exponential backoff and jitter and acks nothing; the broker's
//     prefetch window (Config.Prefetch) stops the flow meanwhile. Each
//     attempt is bounded by Config.AppendTimeout, so a database that hangs
//     (answers nothing on open connections) is retried in the process like
//     one that is down, instead of holding the attempt until the kernel's
//     TCP timeout and the watchdog restart that would cost a redelivery.
//     An attempt that timed out while the database answered a ping is a
//     slow commit, not a hang: the next attempt's bound doubles (up to ten
//     minutes), so a commit slower than AppendTimeout still goes through,
//     and the watchdog's stall limit follows the bound. The bound learned
//     stays for the next batches, and each commit that takes at most a
//     quarter of it halves it, down to AppendTimeout; whatever the bound,
//     a ping left unanswered for half AppendTimeout (they come every half
//     AppendTimeout during an attempt) ends the attempt, so a hang is
//     noticed within AppendTimeout. A commit whose
//     outcome is unknown (connection lost during COMMIT, or its answer not
//     back in time) is simply retried: the stored events come back as
//     duplicates.
//   - A batch held unacked for Config.HoldLimit without a commit is
//     handed back after its failed attempt, and no attempt holds it past
//     HoldLimit plus the bound: a first attempt that comes late (behind
//     slow commits) is cut to what is left, or not made
//     (its hold counted from the earliest time the broker
//     may have delivered one of its messages, which may have waited
//     unread in the client's prefetch buffer while a commit ran: see
//     deliveries): the persister closes its consuming channel (Queue.Pause),
//     which returns the batch and every other unacked message to the
//     queue, in order, and consumes nothing until the log takes writes
//     (Log.Writable: the counter row updated in a transaction rolled
//     back; a database that answers pings but refuses writes, read-only
//     or a Galera node out of the primary component, does not); then it
//     consumes again. Otherwise the broker's consumer_timeout would close
//     the channel, and the queue redeliver the batch, once per timeout
//     for as long as the database is down, each time toward the persist
//     queue's delivery limit (100), past which valid events are
//     dead-lettered. So an outage costs each held message one
//     redelivery, whatever its length; only one that lets that check
//     through but fails the batch's own writes (a full disk) costs one
//     each hold limit. The messages the
//     broker has back are never committed from the old channel
//     (Message.Stale): committed before the redelivery of the batch
//     handed back, they would leave the order of publication; the
//     redeliveries come first, and the stored ones are duplicates.
//   - One ordered log: every Append locks the counter row first, so any
//     number of persisters commit one batch at a time, in seq order.
//   - Bad input never blocks the queue: an event that does not decode is
//     dead-lettered at once, with reason "malformed: ...", "invalid: ..."
//     or "too_large: ..." in the x-causeway-reason header, and counted in
//     causeway_persister_dead_lettered_total{reason}. A batch the database
//     refuses for its content (not for being unavailable) is retried event
//     by event, and an event refused alone is dead-lettered ("rejected").
//     A refusal is told by the MariaDB error number (refusedErrors: a value
//     too long, out of range, not convertible, or of a collation that does
//     not mix with the column's; a CHECK constraint; a row or packet too
//     large); any other error is retried, since one of the database's
//     state (read-only, a full disk, a grant) taken for a refusal would
//     dead-letter every event. A replayed record whose recorded_at header
//     is past year 9999 in UTC, which no DATETIME holds, is "invalid".
//
// The sequenced publish happens after commit and ack, on its own
// goroutine, in commit order. It is a doorbell with payload, not the
// record: if it fails (or its queue is full) the persister logs, counts and
// goes on, and followers notice the gap by Batch.PrevSeq and read the
// database. Batches of two persisters may reach followers out of order
// for the same reason.
//
// Acks: deliveries of one broker channel are handed out in order, and
// every delivery before a batch's last one is in the batch, in an earlier
// batch, or dead-lettered, so one multiple ack on the last delivery acks
// the batch. After a reconnect, a batch whose commit began before its
// channel closed is still committed, its ack fails harmlessly (ErrStale),
// and the broker's redeliveries are duplicates (a pause instead drops
// the batch it hands back: nothing of it is committed). After either, the
// old channel's messages whose commit had not begun are left out, and
// come back with the redeliveries; so a batch holds the messages of one
// channel, and its multiple ack covers none that was left out.
//
// Shutdown (ctx cancelled, e.g. SIGTERM): the persister stops taking
// deliveries, commits and acks the batch in flight — retrying within
// Config.ShutdownGrace if the database is failing — closes its consumer
// (the unread prefetched deliveries return to the queue), drains the
// sequenced publishes within the same grace, and returns.
//
// Maintenance: at start and every Config.MaintenanceInterval the
// persister creates the next Config.PartitionLookahead days' partitions
// and applies Config.Retention, both by the log's clock (the database
// server's, which dates the records), not its host's — but retention by
// the host's when that is behind the log's, so that a database clock
// stepped forward deletes nothing still within retention: it first deletes
// the snapshots older than the newest usable one recorded at or before
// the boundary (Deps.Snapshots, snapshot.Store.Prune), then drops the day
// partitions older than the boundary — but never past the oldest stored
// snapshot (store.Log.Retain), since reconstruction replays the events
// after a snapshot; with no snapshot at or before the boundary it drops
// nothing while the log still starts at seq 1. Last it deletes the events
// of the anchor's day up to the anchor's seq (store.Log.TrimThrough), in
// short statements under the retention lock, so that the oldest event kept
// comes right after the anchor. Several persisters may do so at once; the
// store serialises them.
//
// Metrics: causeway_persister_events_committed_total, _duplicates_total,
// _dead_lettered_total{reason}, _batch_size, _commit_seconds,
// _lag_seconds (recorded_at minus the event's observed_at, which sources
// may date well before they send it), _intake_delay_seconds (recorded_at
// minus the time the producer spooled the event: the backlog of spools
// and queues),
// _commit_retries_total, _append_bound_seconds (the bound of the next
// attempt), _paused (1 while it has handed its batch back
// and waits for the database), _pauses_total,
// _sequenced_unpublished_total, _snapshots_pruned_total and
// _events_trimmed_total (the rows retention deleted up to its anchor).
package persister
