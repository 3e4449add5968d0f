package notifier

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/causeway/causeway/internal/clip"
	"github.com/causeway/causeway/internal/liveness"
	"github.com/causeway/causeway/internal/store"
)

// errLeaseLost reports that another instance holds the subscriber now.
var errLeaseLost = errors.New("lease lost")

// pos is a place in a subscriber's outbox: the next row to deliver.
type pos struct {
	seq int64
	ord int
}

func (p pos) after() pos { return pos{p.seq, p.ord + 1} }

func (p pos) less(q pos) bool { return p.seq < q.seq || (p.seq == q.seq && p.ord < q.ord) }

// pending is one outbox row read for delivery.
type pending struct {
	pos
	webhookID string
	payload   []byte
	// age is the row's age when it was read, measured by the database
	// (which stamped queued_at), and readAt the local time before the
	// read: ageAt adds the local time passed since, so that a skew between
	// the two clocks never shows as age.
	age    time.Duration
	readAt time.Time
}

// ageAt is the row's age at local time now.
func (r pending) ageAt(now time.Time) time.Duration { return r.age + max(0, now.Sub(r.readAt)) }

// subRow is a subscription as the leader stored it.
type subRow struct {
	id      string
	deleted bool
	seq     int64 // of its last change (its deletion, when deleted)
	// deletedSeq is the seq of its latest deletion (0: never deleted),
	// kept when the id is added again.
	deletedSeq int64
	spec       []byte
}

// db wraps the notifier's statements.
type db struct {
	sql      *sql.DB
	instance string
	ttl      time.Duration
	// timeout bounds each statement and transaction (0: none, for the
	// commands, whose caller bounds them): the driver ends one when its
	// context does, so a database that stopped answering fails it then,
	// rather than when the kernel's TCP timeout ends the connection.
	timeout time.Duration
	// ops counts each statement and transaction in flight, for
	// Notifier.Alive (nil: not counted).
	ops *liveness.Ops
}

// bound is ctx with the deadline of one statement or transaction, which
// counts as an operation in flight (ops) until the returned cancel is
// called.
func (d *db) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	end := d.ops.Begin()
	var cancel context.CancelFunc
	if d.timeout <= 0 {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
	}
	return ctx, func() {
		cancel()
		end()
	}
}

// exec runs one statement, bounded.
func (d *db) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.sql.ExecContext(ctx, query, args...)
}

// scanRow runs one query of at most one row, bounded, into dest
// (sql.ErrNoRows when there is none).
func (d *db) scanRow(ctx context.Context, dest []any, query string, args ...any) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.sql.QueryRowContext(ctx, query, args...).Scan(dest...)
}

func (d *db) subscriptions(ctx context.Context) ([]subRow, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	rows, err := d.sql.QueryContext(ctx, "SELECT id, deleted, spec FROM notifier_subscriptions ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []subRow
	for rows.Next() {
		var s subRow
		if err := rows.Scan(&s.id, &s.deleted, &s.spec); err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return out, nil
}

func (d *db) subscription(ctx context.Context, id string) (subRow, bool, error) {
	s := subRow{id: id}
	err := d.scanRow(ctx, []any{&s.deleted, &s.seq, &s.deletedSeq, &s.spec}, "SELECT deleted, seq, deleted_seq, spec FROM notifier_subscriptions WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("read subscription %s: %w", id, err)
	}
	return s, true, nil
}

// acquire takes the lease of subscriber id if it is free, expired or
// already ours, and returns its cursor.
func (d *db) acquire(ctx context.Context, id string) (pos, bool, error) {
	if _, err := d.exec(ctx, "INSERT IGNORE INTO notifier_cursors (subscription_id, updated_at) VALUES (?, UTC_TIMESTAMP(6))", id); err != nil {
		return pos{}, false, fmt.Errorf("create cursor of %s: %w", id, err)
	}
	// Should the answer be lost (the statement timed out), the lease may
	// be ours all the same: the next scan takes it again (it is ours), or
	// another instance once it expires.
	res, err := d.exec(ctx,
		`UPDATE notifier_cursors SET lease_owner = ?, lease_expires = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
		 WHERE subscription_id = ? AND (lease_owner = ? OR lease_expires < UTC_TIMESTAMP(6))`,
		d.instance, d.ttl.Microseconds(), id, d.instance)
	if err != nil {
		return pos{}, false, fmt.Errorf("acquire lease of %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return pos{}, false, nil
	}
	var p pos
	if err := d.scanRow(ctx, []any{&p.seq, &p.ord}, "SELECT next_seq, next_ord FROM notifier_cursors WHERE subscription_id = ?", id); err != nil {
		return pos{}, false, fmt.Errorf("read cursor of %s: %w", id, err)
	}
	return p, true, nil
}

// checkLease runs inside tx: it extends our lease, failing with
// errLeaseLost if the lease is no longer ours. The new expiry always
// differs from the stored one, so RowsAffected is 1 exactly when it is ours.
func (d *db) checkLease(ctx context.Context, tx *store.Tx, id string) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE notifier_cursors SET lease_expires = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
		 WHERE subscription_id = ? AND lease_owner = ? AND lease_expires >= UTC_TIMESTAMP(6)`,
		d.ttl.Microseconds(), id, d.instance)
	if err != nil {
		return fmt.Errorf("renew lease of %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("subscriber %s: %w", id, errLeaseLost)
	}
	return nil
}

// inTx runs f in a transaction, bounded as a whole by the timeout; f's
// statements take the ctx it is given.
func (d *db) inTx(ctx context.Context, what string, f func(ctx context.Context, tx *store.Tx) error) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	tx, err := store.Begin(ctx, d.sql)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback(ctx)
	if err := f(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

func (d *db) renew(ctx context.Context, id string) error {
	return d.inTx(ctx, "renew lease of "+id, func(ctx context.Context, tx *store.Tx) error { return d.checkLease(ctx, tx, id) })
}

// release gives the lease up so another instance takes over at once.
func (d *db) release(ctx context.Context, id string) error {
	_, err := d.exec(ctx,
		"UPDATE notifier_cursors SET lease_owner = '', lease_expires = '1970-01-01 00:00:00' WHERE subscription_id = ? AND lease_owner = ?",
		id, d.instance)
	if err != nil {
		return fmt.Errorf("release lease of %s: %w", id, err)
	}
	return nil
}

const afterCursor = "subscription_id = ? AND (seq > ? OR (seq = ? AND ord >= ?))"

// fetch reads up to n rows from p on; now is the local time before it.
func (d *db) fetch(ctx context.Context, id string, p pos, n int, now time.Time) ([]pending, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	rows, err := d.sql.QueryContext(ctx,
		`SELECT seq, ord, webhook_id, TIMESTAMPDIFF(MICROSECOND, queued_at, UTC_TIMESTAMP(6)), payload
		 FROM notifier_outbox WHERE `+afterCursor+" ORDER BY seq, ord LIMIT ?",
		id, p.seq, p.seq, p.ord, n)
	if err != nil {
		return nil, fmt.Errorf("read outbox of %s: %w", id, err)
	}
	defer rows.Close()
	var out []pending
	for rows.Next() {
		r := pending{readAt: now}
		var us int64
		if err := rows.Scan(&r.seq, &r.ord, &r.webhookID, &us, &r.payload); err != nil {
			return nil, fmt.Errorf("read outbox of %s: %w", id, err)
		}
		r.age = time.Duration(us) * time.Microsecond
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox of %s: %w", id, err)
	}
	return out, nil
}

// progress is what a worker writes with its cursor.
type progress struct {
	delivered   int64
	failing     bool // the subscriber is failing now
	lastError   string
	succeededAt time.Time
}

// advance moves the cursor from old to p, deletes the delivered rows
// (behind p), and records progress, all under our lease. It adds
// pr.delivered to the count, so it is not to be called again with the same
// progress after an error, whose commit may have taken effect (ctx ended
// while its answer was awaited): a worker whose advance fails stops, and
// the next one starts from the stored cursor.
func (d *db) advance(ctx context.Context, id string, old, p pos, pr progress) error {
	return d.inTx(ctx, "advance cursor of "+id, func(ctx context.Context, tx *store.Tx) error {
		if err := d.checkLease(ctx, tx, id); err != nil {
			return err
		}
		var succ any
		if !pr.succeededAt.IsZero() {
			succ = pr.succeededAt.UTC()
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE notifier_cursors SET next_seq = ?, next_ord = ?, delivered = delivered + ?,
			   failing_since = IF(?, COALESCE(failing_since, UTC_TIMESTAMP(6)), NULL),
			   last_error = IF(?, ?, last_error),
			   last_success_at = COALESCE(?, last_success_at), updated_at = UTC_TIMESTAMP(6)
			 WHERE subscription_id = ?`,
			p.seq, p.ord, pr.delivered, pr.failing, pr.failing, clip.String(pr.lastError, 1024), succ, id); err != nil {
			return fmt.Errorf("advance cursor of %s: %w", id, err)
		}
		if old.less(p) {
			if _, err := tx.ExecContext(ctx,
				"DELETE FROM notifier_outbox WHERE subscription_id = ? AND (seq < ? OR (seq = ? AND ord < ?))",
				id, p.seq, p.seq, p.ord); err != nil {
				return fmt.Errorf("delete delivered rows of %s: %w", id, err)
			}
		}
		return nil
	})
}

// deadLetterChunk bounds the rows one transaction of deadLetter moves, so
// that it fits well inside the timeout however large the backlog (here
// 5,000 rows of a few hundred bytes move in a fraction of a second;
// 300,000 took 13 s): a move that ended at the timeout would be rolled
// back and tried again whole, for ever.
const deadLetterChunk = 5_000

// deadLetter moves the rows from cursor p through last (inclusive; all
// pending rows when last is nil) to the dead-letter table with reason, and
// returns the new cursor and the number of rows moved. It moves them
// deadLetterChunk at a time, one transaction each, with the cursor; on an
// error, what it returns is what the transactions before it moved.
func (d *db) deadLetter(ctx context.Context, id string, p pos, last *pos, reason string) (pos, int64, error) {
	var total int64
	for {
		np, moved, more, err := d.deadLetterChunk(ctx, id, p, last, reason)
		if err != nil {
			return p, total, err
		}
		p, total = np, total+moved
		if !more {
			return p, total, nil
		}
	}
}

// deadLetterChunk is one transaction of deadLetter: it moves at most
// deadLetterChunk rows from p on, through last, and says whether there
// may be more to move.
func (d *db) deadLetterChunk(ctx context.Context, id string, p pos, last *pos, reason string) (pos, int64, bool, error) {
	np, moved, more := p, int64(0), false
	err := d.inTx(ctx, "dead-letter rows of "+id, func(ctx context.Context, tx *store.Tx) error {
		if err := d.checkLease(ctx, tx, id); err != nil {
			return err
		}
		end := last
		// The chunk's end: its last row, when it comes before last.
		var e pos
		err := tx.QueryRowContext(ctx, "SELECT seq, ord FROM notifier_outbox WHERE "+afterCursor+" ORDER BY seq, ord LIMIT 1 OFFSET ?",
			id, p.seq, p.seq, p.ord, deadLetterChunk-1).Scan(&e.seq, &e.ord)
		switch {
		case err == nil && (last == nil || e.less(*last)):
			end, more = &e, true
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("dead-letter rows of %s: %w", id, err)
		case end == nil:
			// Fewer than a chunk pending: through the last of them.
			err := tx.QueryRowContext(ctx, "SELECT seq, ord FROM notifier_outbox WHERE "+afterCursor+" ORDER BY seq DESC, ord DESC LIMIT 1",
				id, p.seq, p.seq, p.ord).Scan(&e.seq, &e.ord)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("dead-letter rows of %s: %w", id, err)
			}
			end = &e
		}
		const through = afterCursor + " AND (seq < ? OR (seq = ? AND ord <= ?))"
		args := []any{id, p.seq, p.seq, p.ord, end.seq, end.seq, end.ord}
		res, err := tx.ExecContext(ctx,
			`INSERT IGNORE INTO notifier_dead_letters (subscription_id, seq, ord, webhook_id, recorded_at, queued_at, payload, reason, dead_at)
			 SELECT subscription_id, seq, ord, webhook_id, recorded_at, queued_at, payload, ?, UTC_TIMESTAMP(6) FROM notifier_outbox
			 WHERE `+through+` ORDER BY seq, ord`,
			append([]any{clip.String(reason, 1024)}, args...)...)
		if err != nil {
			return fmt.Errorf("dead-letter rows of %s: %w", id, err)
		}
		moved, _ = res.RowsAffected()
		if _, err := tx.ExecContext(ctx, "DELETE FROM notifier_outbox WHERE "+through, args...); err != nil {
			return fmt.Errorf("dead-letter rows of %s: delete: %w", id, err)
		}
		np = end.after()
		if _, err := tx.ExecContext(ctx,
			"UPDATE notifier_cursors SET next_seq = ?, next_ord = ?, dead_lettered = dead_lettered + ?, updated_at = UTC_TIMESTAMP(6) WHERE subscription_id = ?",
			np.seq, np.ord, moved, id); err != nil {
			return fmt.Errorf("dead-letter rows of %s: cursor: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return p, 0, false, err
	}
	return np, moved, more, nil
}

// backlog counts the rows from p on and finds the oldest one's queue time
// and its age, measured by the database's clock (0 when none).
func (d *db) backlog(ctx context.Context, id string, p pos) (int64, time.Time, time.Duration, error) {
	var n int64
	var oldest sql.NullTime
	var us sql.NullInt64
	if err := d.scanRow(ctx, []any{&n, &oldest, &us},
		"SELECT COUNT(*), MIN(queued_at), TIMESTAMPDIFF(MICROSECOND, MIN(queued_at), UTC_TIMESTAMP(6)) FROM notifier_outbox WHERE "+afterCursor,
		id, p.seq, p.seq, p.ord); err != nil {
		return 0, time.Time{}, 0, fmt.Errorf("count backlog of %s: %w", id, err)
	}
	return n, oldest.Time, max(0, time.Duration(us.Int64)*time.Microsecond), nil
}

// nth returns the position of the k-th pending row from p (k >= 1).
func (d *db) nth(ctx context.Context, id string, p pos, k int64) (pos, error) {
	var e pos
	if err := d.scanRow(ctx, []any{&e.seq, &e.ord}, "SELECT seq, ord FROM notifier_outbox WHERE "+afterCursor+" ORDER BY seq, ord LIMIT 1 OFFSET ?",
		id, p.seq, p.seq, p.ord, k-1); err != nil {
		return pos{}, fmt.Errorf("find row %d of %s: %w", k, id, err)
	}
	return e, nil
}

func (d *db) recordStatus(ctx context.Context, id string, backlog int64, oldest time.Time) error {
	var o any
	if !oldest.IsZero() {
		o = oldest
	}
	if _, err := d.exec(ctx,
		"UPDATE notifier_cursors SET backlog = ?, oldest_queued_at = ? WHERE subscription_id = ? AND lease_owner = ?",
		backlog, o, id, d.instance); err != nil {
		return fmt.Errorf("record status of %s: %w", id, err)
	}
	return nil
}

func (d *db) recordFailure(ctx context.Context, id string, msg string) error {
	if _, err := d.exec(ctx,
		`UPDATE notifier_cursors SET failing_since = COALESCE(failing_since, UTC_TIMESTAMP(6)), last_error = ?, updated_at = UTC_TIMESTAMP(6)
		 WHERE subscription_id = ? AND lease_owner = ?`,
		clip.String(msg, 1024), id, d.instance); err != nil {
		return fmt.Errorf("record failure of %s: %w", id, err)
	}
	return nil
}
