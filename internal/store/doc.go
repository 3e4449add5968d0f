// Package store is Causeway's MariaDB layer (database/sql with
// go-sql-driver/mysql): connection settings, versioned schema migrations,
// the event log, retention by partition, and the raft-term fences of
// leader writes.
//
// # The one ordered log (invariant 2 of DESIGN.md)
//
// Log.Append stores a batch of events in one transaction whose first
// statement is SELECT ... FOR UPDATE on the single log_counter row. Every
// writer takes that lock, so writers — goroutines or whole persister
// processes — run their transactions one at a time, and the lock is held
// until COMMIT. Hence:
//
//   - seq is dense: each transaction continues from the counter it read
//     under the lock, and writes the new last seq back before committing;
//   - commit order equals seq order: a transaction holding seq N+1 cannot
//     commit before the one holding N, because it could not read the
//     counter until that one had committed. A reader polling seq > last
//     therefore never sees N+1 while N is still uncommitted;
//   - recorded_at never decreases along seq: it is max(now, the counter's
//     last_recorded_at), so a writer whose clock lags gives its records the
//     previous batch's time. "The state at time T" is a prefix of the log
//     (SeqAt).
//
// A writer that vanishes while it holds the lock (its host crashed or was
// cut off, so the server sees an idle client) loses it after the Append's
// idle timeout (idle_transaction_timeout, set in its transaction), rather
// than after wait_timeout or TCP keepalive: the others, a standby
// persister that took the queue over included, append again.
//
// # Dedup by event_id
//
// A partitioned table cannot have UNIQUE(event_id) without the partition
// column, so events has a plain index on event_id, and Append looks the
// batch's ids up in it under the counter lock: no other writer can insert
// an id between the check and the insert, so the check is race-free. It
// was chosen over a separate unpartitioned dedup table because such a table
// would have to be purged row by row (DELETE) for retention — exactly what
// the partitioned log avoids — and it would add a second insert per event.
// The price: the lookup visits the event_id index of each partition, and
// an event_id redelivered after its partition was dropped is stored again,
// which is beyond retention by definition. The guarantee holds only for
// writers that go through Append (or take the counter lock first).
//
// # Partitions and retention
//
// events is partitioned by RANGE COLUMNS(recorded_at), one partition per
// UTC day (pYYYYMMDD) plus a catch-all pmax. By day on recorded_at rather
// than by seq range because retention is a time ("keep 30 days"):
// DropBefore(t) drops the partitions whose bound is at or before t — a
// metadata operation, no row deletes — and SeqAt(t) prunes to the
// partitions up to t. Retain(t) is DropBefore bounded by the oldest stored
// snapshot, so retention never drops an event that reconstruction from a
// stored snapshot needs; TrimThrough then deletes, in short statements,
// the rows of that snapshot's day up to its seq, which nothing can replay
// from (no snapshot precedes them), so that the oldest stored event comes
// right after a snapshot and SeqAt answers that snapshot's seq from its
// recorded_at on. Seq-range partitions would have to be sized ahead
// without knowing the event rate. The primary key is (seq, recorded_at):
// it must contain the partition column; ordered reads by seq use it in each
// partition. MaintainPartitions, run periodically by the persister, splits
// the coming days out of pmax ahead of time; pmax guarantees an insert
// never fails for want of a partition if maintenance falls behind. The
// counter row keeps the head, so seq continues after retention drops
// everything.
//
// # Reading
//
// ReadRange, Head, SeqAt and Scan serve followers, reconstruction and
// replay. Scan pages through the log in short statements so that a long
// replay holds no transaction open (which would block DropBefore's ALTER
// TABLE and InnoDB purge).
//
// # Transactions bounded by their context
//
// Every transaction here and in the leader's and the notifier's writes is
// a Tx (Begin), not a sql.Tx: a sql.Tx sends COMMIT and ROLLBACK without a
// context, so on a database that stopped answering they wait for the
// kernel's TCP timeout whatever the caller's deadline; a Tx's end with the
// context they are given.
//
// # Fencing (invariant 4)
//
// CheckFence(ctx, tx, name, term) is called inside a leader's write
// transaction, first: it raises the fencing row of name to term and fails
// with ErrFenced if a higher term is already stored, holding the row lock
// until the transaction ends.
//
// # Migrations
//
// Migrations are the embedded files migrations/NNNN_lower_snake.sql,
// applied in version order by Migrate (`causeway migrate`) and recorded in
// schema_migrations with their SHA-256. Conventions for owners adding
// tables (snapshots, outbox, alarm history):
//
//   - take the next free four-digit number, or a number in a range your
//     component reserves (0200_notifier.sql) so that engineers working at
//     once do not collide; gaps are fine, and each version is tracked on
//     its own, so a lower number added later is still applied;
//   - never edit or renumber a file once it is committed — a changed
//     applied file is refused (ErrMigrationChanged); fix forward with a
//     new file;
//   - one file per change, named for what it adds (0003_snapshots.sql);
//   - statements end with ';' at the end of a line; whole-line "--"
//     comments only; no stored procedures (no ';' inside a statement);
//   - MariaDB commits DDL implicitly, so write statements that can run
//     again after a failure half-way (CREATE TABLE IF NOT EXISTS, INSERT
//     IGNORE);
//   - DATETIME(6) in UTC for times, MEDIUMBLOB for opaque bodies, _bin
//     collations for identifiers, and leader-written tables carry the raft
//     term checked with CheckFence.
//
// Migrate serialises concurrent runs on GET_LOCK (named after the
// database), so several processes may run it at start-up.
package store
