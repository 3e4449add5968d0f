package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
)

// Partitions of the events table: pYYYYMMDD holds the rows recorded before
// the next day's midnight UTC (and after the previous partition's bound);
// pmax catches whatever lies past the last day partition, so an insert can
// never fail for want of a partition.
const (
	catchAll        = "pmax"
	dayLayout       = "20060102"
	partitionPrefix = "p"
	// maintainLockTimeout bounds the wait for another process maintaining
	// the partitions of the same database.
	maintainLockTimeout = 30 * time.Second
	// alterLockWaitSeconds bounds how long a partition ALTER waits for the
	// table's metadata lock. Writers queue behind a waiting ALTER, so a long
	// transaction on events (an ad-hoc query) must make the ALTER give up —
	// it is retried at the next maintenance — rather than stall the log.
	alterLockWaitSeconds = 2
)

// alter runs an ALTER TABLE on conn with a short metadata-lock wait.
func alter(ctx context.Context, conn *sql.Conn, q string) error {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", alterLockWaitSeconds)); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, q)
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION lock_wait_timeout = DEFAULT"); rerr != nil {
		// Do not pool a connection with the short timeout.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// Partition is one day partition of the events table.
type Partition struct {
	Name string
	// Before is the partition's upper bound: every row in it was recorded
	// before this instant (midnight UTC of the next day).
	Before time.Time
	// Rows is InnoDB's estimate of the partition's rows.
	Rows int64
}

// Partitions lists the day partitions of the events table, oldest first
// (the catch-all pmax is left out).
func (l *Log) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT PARTITION_NAME, TABLE_ROWS FROM information_schema.PARTITIONS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events' AND PARTITION_NAME IS NOT NULL
ORDER BY PARTITION_ORDINAL_POSITION`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var p Partition
		var n sql.NullInt64
		if err := rows.Scan(&p.Name, &n); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		p.Rows = n.Int64
		if p.Name == catchAll {
			continue
		}
		day, err := time.Parse(dayLayout, strings.TrimPrefix(p.Name, partitionPrefix))
		if err != nil || !strings.HasPrefix(p.Name, partitionPrefix) {
			return nil, fmt.Errorf("list partitions: unexpected partition %q of events", p.Name)
		}
		p.Before = day.AddDate(0, 0, 1)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return out, nil
}

// MaintainPartitions makes sure the events table has a day partition for
// the day of now and each of the lookahead days after it, splitting them
// out of pmax. It returns the names of the partitions it created. Rows
// already in pmax that fall before the first new bound end up in the first
// new partition, so a late run loses nothing; it only makes that partition
// coarser. Concurrent runs (two persisters) serialise on a named lock.
func (l *Log) MaintainPartitions(ctx context.Context, now time.Time, lookahead int) ([]string, error) {
	if lookahead < 0 {
		return nil, fmt.Errorf("maintain partitions: lookahead %d is negative", lookahead)
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("maintain partitions: get connection: %w", err)
	}
	defer conn.Close()
	unlock, err := namedLock(ctx, conn, "partitions", maintainLockTimeout)
	if err != nil {
		return nil, fmt.Errorf("maintain partitions: %w", err)
	}
	defer unlock()

	parts, err := l.Partitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("maintain partitions: %w", err)
	}
	today := now.UTC().Truncate(24 * time.Hour)
	from := today
	if n := len(parts); n > 0 {
		// The last partition holds the day before its bound.
		if last := parts[n-1].Before; !last.Before(from) {
			from = last
		}
	}
	var defs []string
	var names []string
	for day := from; !day.After(today.AddDate(0, 0, lookahead)); day = day.AddDate(0, 0, 1) {
		name := partitionPrefix + day.Format(dayLayout)
		names = append(names, name)
		defs = append(defs, fmt.Sprintf("PARTITION %s VALUES LESS THAN ('%s')", name, day.AddDate(0, 0, 1).Format("2006-01-02 15:04:05")))
	}
	if len(defs) == 0 {
		return nil, nil
	}
	q := fmt.Sprintf("ALTER TABLE events REORGANIZE PARTITION %s INTO (%s, PARTITION %s VALUES LESS THAN (MAXVALUE))",
		catchAll, strings.Join(defs, ", "), catchAll)
	if err := alter(ctx, conn, q); err != nil {
		return nil, fmt.Errorf("maintain partitions: add %s..%s: %w", names[0], names[len(names)-1], err)
	}
	return names, nil
}

// DropBefore drops the day partitions whose every row was recorded before
// t, and returns their names. Retention is by whole partitions: rows of
// the partition that holds t stay until all of that day is older than t.
// The log head (log_counter) is unaffected, so seq continues after a drop.
func (l *Log) DropBefore(ctx context.Context, t time.Time) ([]string, error) {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("drop partitions: get connection: %w", err)
	}
	defer conn.Close()
	unlock, err := namedLock(ctx, conn, "partitions", maintainLockTimeout)
	if err != nil {
		return nil, fmt.Errorf("drop partitions: %w", err)
	}
	defer unlock()

	parts, err := l.Partitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("drop partitions: %w", err)
	}
	var names []string
	for _, p := range parts {
		if !p.Before.After(t) {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	if err := alter(ctx, conn, "ALTER TABLE events DROP PARTITION "+strings.Join(names, ", ")); err != nil {
		return nil, fmt.Errorf("drop partitions %s: %w", strings.Join(names, ", "), err)
	}
	return names, nil
}

// LockRetention takes the lock that serialises what removes data a
// reconstruction needs: retention (the snapshot pruning, then Retain) and
// snapshot.Reconstructor.PruneStale. It waits at most wait (whole
// seconds); an error wraps ErrLockHeld when another session holds it.
func (l *Log) LockRetention(ctx context.Context, wait time.Duration) (RetentionLease, error) {
	lease, err := Lock(ctx, l.db, "retention", wait)
	if err != nil {
		return nil, err
	}
	return lease, nil
}

// RetentionLease is a held retention lock (a *Lease): Held says whether it
// still is (its session may have dropped, which releases it).
type RetentionLease interface {
	Held(ctx context.Context) error
	Release()
}

// Retain applies event retention without breaking reconstruction: it drops
// the day partitions recorded before t, but never an event that a stored
// snapshot still needs — the bound is the earlier of t and the recorded_at
// of the oldest snapshot in the snapshots table (after snapshot pruning,
// that is the anchor of the retention window; replay from it needs every
// event after it). With no snapshot stored nothing is dropped, since a
// cold start would have to replay the log from seq 1. anchored says the
// caller checked that a snapshot the processors can restore is stored at
// or before t (snapshot retention's anchor); without one, nothing is
// dropped while the log still starts at seq 1: the moments between t and
// the oldest usable snapshot are then reconstructed by a replay from seq 1
// (the first snapshots were taken lately, `snapshots prune-stale` deleted
// the older ones, or those before t cannot be restored), and wait for a
// usable snapshot to fall behind t. It returns the dropped partitions and
// the bound it used (zero when none).
//
// The anchor's day partition stays whole, with the events before the
// anchor, which no stored snapshot precedes: TrimThrough(anchor's seq),
// called next, deletes them, so that the oldest stored event comes right
// after a snapshot.
func (l *Log) Retain(ctx context.Context, t time.Time, anchored bool) ([]string, time.Time, error) {
	var oldest sql.NullTime
	if err := l.db.QueryRowContext(ctx, "SELECT MIN(recorded_at) FROM snapshots").Scan(&oldest); err != nil {
		return nil, time.Time{}, fmt.Errorf("retain: oldest snapshot: %w", err)
	}
	if !oldest.Valid {
		return nil, time.Time{}, nil
	}
	bound := t.UTC()
	if o := oldest.Time.UTC(); o.Before(bound) {
		bound = o
	} else if o.After(bound) {
		anchored = false // no snapshot at all at or before t
	}
	if !anchored {
		// Only a whole log reconstructs the moments from t to the oldest
		// usable snapshot. One that lost its start already has no way
		// back to them, and may go up to the bound.
		first, err := l.First(ctx)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("retain: %w", err)
		}
		if first <= 1 {
			return nil, time.Time{}, nil
		}
	}
	dropped, err := l.DropBefore(ctx, bound)
	return dropped, bound, err
}

// trimChunk bounds the rows of one TrimThrough statement (a variable for
// tests).
var trimChunk = 5000

// TrimThrough deletes the stored events with seq <= seq, which the
// snapshot at seq (the retention anchor) makes unnecessary: Retain drops
// whole day partitions, and leaves those of the anchor's day that come
// before it, which no stored snapshot precedes once the older ones are
// deleted — the replay of any of them would meet a gap. After it, the
// oldest stored event is seq+1 (or none), and the anchor is right before
// it. It refuses unless a snapshot at seq is stored and none before it, so
// it never deletes an event a stored snapshot needs; the caller checked the
// anchor is usable. The rows (at most the anchor's day, since recorded_at
// never decreases along seq) go in short statements of trimChunk rows,
// each its own transaction, and before each it checks that lease (the
// retention lock) is still held. It returns the rows deleted, those of
// the statements that succeeded when it fails.
func (l *Log) TrimThrough(ctx context.Context, seq int64, lease RetentionLease) (int64, error) {
	var oldest sql.NullInt64
	if err := l.db.QueryRowContext(ctx, "SELECT MIN(seq) FROM snapshots").Scan(&oldest); err != nil {
		return 0, fmt.Errorf("trim events through seq %d: oldest snapshot: %w", seq, err)
	}
	if !oldest.Valid {
		return 0, fmt.Errorf("trim events through seq %d: no snapshot is stored", seq)
	}
	if oldest.Int64 != seq {
		return 0, fmt.Errorf("trim events through seq %d: the oldest stored snapshot is at seq %d", seq, oldest.Int64)
	}
	var deleted int64
	for {
		if err := lease.Held(ctx); err != nil {
			return deleted, fmt.Errorf("trim events through seq %d: %w", seq, err)
		}
		res, err := l.db.ExecContext(ctx, "DELETE FROM events WHERE seq <= ? ORDER BY seq LIMIT ?", seq, trimChunk)
		if err != nil {
			return deleted, fmt.Errorf("trim events through seq %d: %w", seq, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, fmt.Errorf("trim events through seq %d: %w", seq, err)
		}
		deleted += n
		if n < int64(trimChunk) {
			return deleted, nil
		}
	}
}
