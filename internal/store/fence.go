package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrFenced reports a write by a leader whose raft term is lower than the
// term already stored for its fence: a deposed leader. The caller rolls
// its transaction back.
var ErrFenced = errors.New("fenced: a newer leader term is stored")

// CheckFence checks, inside the caller's transaction, that term is at
// least the term stored for the fence name, and raises the stored term to
// term when it is higher. It locks the fence row until tx ends, so of two
// leaders writing at once the older one waits and then fails with
// ErrFenced. A fence that does not exist yet is created at term. It must
// come before the transaction's other reads: its SELECT is a consistent
// read, which at REPEATABLE READ sees the snapshot the first read took.
func CheckFence(ctx context.Context, tx *Tx, name string, term int64) error {
	// One upsert takes the row's exclusive lock (no shared-then-exclusive
	// upgrade that could deadlock two leaders) and raises the term.
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO fencing (name, term) VALUES (?, ?) ON DUPLICATE KEY UPDATE term = GREATEST(term, VALUES(term))",
		name, term); err != nil {
		return fmt.Errorf("check fence %s at term %d: %w", name, term, err)
	}
	var stored int64
	if err := tx.QueryRowContext(ctx, "SELECT term FROM fencing WHERE name = ?", name).Scan(&stored); err != nil {
		return fmt.Errorf("check fence %s at term %d: %w", name, term, err)
	}
	if stored > term {
		return fmt.Errorf("check fence %s: %w (term %d, stored %d)", name, ErrFenced, term, stored)
	}
	return nil
}

// ClaimFence raises the fence name to term in a transaction of its own —
// what a new leader does before its first write. A transaction that keeps
// the fence row locked for longer than evictAfter is a deposed leader
// paused or cut off in the middle of a fenced write; left alone it would
// block the new leader until its TCP connection dies, which for a stopped
// process is never. Its connection is killed (KILL CONNECTION, which needs
// the PROCESS privilege to see it and the same user or CONNECTION ADMIN to
// kill it), which rolls its write back; when it resumes, its statement
// fails and every later write is refused by the raised fence. ClaimFence
// returns the MariaDB connection ids it killed, and fails wrapping
// ErrFenced when a newer term is stored. A claim that finds a newer term
// stored when its eviction is due is the stale one (a deposed leader's,
// waiting on the current leader's write): it evicts no one and fails with
// ErrFenced at once. evictAfter <= 0 waits without
// evicting (bounded by innodb_lock_wait_timeout). ctx bounds the COMMIT
// too (Tx): a claim that failed once ctx ended may have taken effect, and
// claiming again at the same term is harmless.
func ClaimFence(ctx context.Context, db *sql.DB, name string, term int64, evictAfter time.Duration) (evicted []int64, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim fence %s: %w", name, err)
	}
	// Read before the transaction begins, so that CheckFence's read is its
	// first.
	var self int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&self); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("claim fence %s: %w", name, err)
	}
	tx, err := begin(ctx, conn) // the transaction owns conn from here
	if err != nil {
		return nil, fmt.Errorf("claim fence %s: %w", name, err)
	}
	var evictErr error
	var newer int64 // a newer term seen stored while the claim waited
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if evictAfter <= 0 {
			return
		}
		t := time.NewTimer(evictAfter)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// A newer term committed means this claim is a deposed
			// leader's (one that resumes from a freeze finds its timer
			// run out before raft deposes it), and the holder may be
			// the current leader's write: it must not be evicted. The
			// claim is ended instead (its own connection killed: its
			// lock wait ends at once), and fails with ErrFenced.
			if stored, err := StoredFence(ctx, db, name); err == nil && stored > term {
				newer = stored // read by the caller only after watched is closed
				if _, err := db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(self, 10)); err != nil {
					evictErr = fmt.Errorf("end the stale claim: %w", err)
				}
				return
			}
			// Read by the caller only after watched is closed.
			ids, err := evictBlockers(ctx, db, self)
			evicted = append(evicted, ids...)
			if err != nil {
				evictErr = err
			}
			t.Reset(evictAfter)
		}
	}()
	err = CheckFence(ctx, tx, name, term)
	// The watcher is done before the connection is released: it may kill
	// it, which must never reach a connection back in the pool.
	close(stop)
	<-watched
	switch {
	case err == nil:
		err = tx.Commit(ctx)
		if err != nil {
			err = fmt.Errorf("claim fence %s: commit: %w", name, err)
		}
	case newer > term && !errors.Is(err, ErrFenced):
		tx.Rollback(ctx)
		err = fmt.Errorf("check fence %s: %w (term %d, stored %d; the claim waited on the newer leader's write)", name, ErrFenced, term, newer)
	default:
		tx.Rollback(ctx)
	}
	if err != nil && evictErr != nil {
		err = fmt.Errorf("%w (evicting the holder: %v)", err, evictErr)
	}
	return evicted, err
}

// evictBlockers kills the connections whose transactions hold a lock that
// the connection waiter waits for.
func evictBlockers(ctx context.Context, db *sql.DB, waiter int64) ([]int64, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT DISTINCT b.trx_mysql_thread_id
		FROM information_schema.INNODB_LOCK_WAITS w
		JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
		JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
		WHERE r.trx_mysql_thread_id = ?`, waiter)
	if err != nil {
		return nil, fmt.Errorf("find the fence holder: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find the fence holder: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find the fence holder: %w", err)
	}
	var killed []int64
	for _, id := range ids {
		// KILL takes no placeholder.
		if _, err := db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)); err != nil {
			return killed, fmt.Errorf("kill fence holder connection %d: %w", id, err)
		}
		killed = append(killed, id)
	}
	return killed, nil
}

// StoredFence reads the term stored for the fence name (0 if it has none),
// without locking: a leader whose write failed for another reason asks it
// whether it was deposed meanwhile.
func StoredFence(ctx context.Context, db *sql.DB, name string) (int64, error) {
	var term int64
	err := db.QueryRowContext(ctx, "SELECT term FROM fencing WHERE name = ?", name).Scan(&term)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read fence %s: %w", name, err)
	}
	return term, nil
}
