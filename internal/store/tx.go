package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Tx is a transaction whose every statement, its COMMIT and ROLLBACK
// included, ends when the context it is given ends. A sql.Tx sends COMMIT
// and ROLLBACK without a context, and the driver watches a context only
// during a statement given one: on a database that stopped answering
// (frozen, or cut off by a network that drops everything) they wait until
// the kernel's TCP timeout ends the connection, whatever the caller's
// context says. Tx runs START TRANSACTION, COMMIT and ROLLBACK as plain
// statements on a connection of its own instead; the driver closes that
// connection when a statement's context ends.
//
// The server rolls a Tx back, and drops its connection, once it has waited
// txIdleTimeout for the transaction's next statement (boundIdle): a client
// that vanished in the middle of one (its host crashed, or was cut off)
// releases its row locks then, not hours later.
//
// A Tx is for one goroutine. Its statements behave as a sql.Tx's: the same
// driver calls with the same arguments on one connection (placeholders
// interpolated or prepared as the DSN says), at the session's isolation
// level, and the statements it prepared are closed when it ends.
type Tx struct {
	conn  *sql.Conn
	stmts []*sql.Stmt // prepared on conn, closed before conn is released
	done  bool        // committed, or rolled back: conn is released
}

// Begin starts a transaction on a connection of its own from db. Its
// errors, and those of the Tx's methods, are the driver's, unwrapped as a
// sql.Tx's, for the caller to say what it began or committed. The
// caller ends it with Commit, and defers Rollback, which does nothing
// after Commit:
//
//	tx, err := store.Begin(ctx, db)
//	if err != nil { ... }
//	defer tx.Rollback(ctx)
//	... tx.ExecContext(ctx, ...) ...
//	return tx.Commit(ctx)
func Begin(ctx context.Context, db *sql.DB) (*Tx, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return begin(ctx, conn)
}

// begin starts a transaction on conn, which the Tx then owns: it is
// released when the transaction ends, or now if it cannot start.
func begin(ctx context.Context, conn *sql.Conn) (*Tx, error) {
	if err := boundIdle(ctx, conn); err != nil {
		discard(conn)
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION"); err != nil {
		discard(conn)
		return nil, err
	}
	return &Tx{conn: conn}, nil
}

// txIdleTimeout is how long the server waits for the next statement of a
// Tx before it drops the connection, rolling the transaction back. Every
// Tx sends its statements back to back (no transaction waits on a remote
// call or a user), so only a client that is gone waits that long. A
// variable: tests shorten it.
var txIdleTimeout = 30 * time.Second

// noIdleTimeout says that the server has no idle_transaction_timeout
// (MariaDB before 10.3, MySQL): transactions go without the bound.
var noIdleTimeout atomic.Bool

// boundIdle sets the session's idle_transaction_timeout to txIdleTimeout
// before a transaction starts on conn. Without it, the transaction of a
// client that vanished would hold its locks until wait_timeout (8 hours)
// or TCP keepalive (2): the log's counter row, which no standby persister
// could then append past; a notifier's cursor row, which the instance
// taking over its lease would wait on; a fence row. The setting stays on
// the pooled connection; outside a transaction it does not apply.
func boundIdle(ctx context.Context, conn *sql.Conn) error {
	if noIdleTimeout.Load() {
		return nil
	}
	secs := max(1, int(math.Ceil(txIdleTimeout.Seconds())))
	_, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION idle_transaction_timeout = %d", secs))
	if me, ok := errors.AsType[*mysql.MySQLError](err); ok && me.Number == erUnknownSystemVariable {
		noIdleTimeout.Store(true)
		return nil
	}
	if err != nil {
		return fmt.Errorf("bound the transaction's idle time: %w", err)
	}
	return nil
}

// erUnknownSystemVariable is MariaDB's error for a variable it does not have.
const erUnknownSystemVariable = 1193

// ExecContext runs a statement in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.conn.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction. Its rows must be closed
// before the transaction's next statement, as on any one connection.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.conn.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query of at most one row in the transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.conn.QueryRowContext(ctx, query, args...)
}

// PrepareContext prepares a statement on the transaction's connection. The
// transaction closes it when it ends, as a sql.Tx does: a statement closed
// later would be closed on a connection back in the pool, maybe in another
// caller's hands.
func (tx *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	stmt, err := tx.conn.PrepareContext(ctx, query)
	if err == nil {
		tx.stmts = append(tx.stmts, stmt)
	}
	return stmt, err
}

// Commit commits the transaction and ends it, whatever the outcome. When
// it fails, the commit may still have taken effect (the COMMIT reached the
// server and its answer was lost, or ctx ended while it was awaited): the
// caller finds out by reading, or retries a write that is idempotent. The
// connection of a failed Commit is discarded, never pooled, since its
// session may still hold the transaction.
func (tx *Tx) Commit(ctx context.Context) error {
	if tx.done {
		return sql.ErrTxDone
	}
	tx.done = true
	if _, err := tx.conn.ExecContext(ctx, "COMMIT"); err != nil {
		tx.release(false)
		return err
	}
	tx.release(true)
	return nil
}

// Rollback ends the transaction without committing it; after Commit it
// does nothing. Once ctx has ended, or if the ROLLBACK fails, it discards
// the connection instead: a connection whose transaction may still be open
// must not go back to the pool. Closing it ends the session, and so the
// transaction; should the close never reach the server, the session ends
// there at its wait_timeout (or its idle_transaction_timeout, where set,
// as Log.Append sets it). The transaction ends either way: there is no
// error to report.
func (tx *Tx) Rollback(ctx context.Context) {
	if tx.done {
		return
	}
	tx.done = true
	ended := false
	if ctx.Err() == nil {
		_, err := tx.conn.ExecContext(ctx, "ROLLBACK")
		ended = err == nil
	}
	tx.release(ended)
}

// release closes the statements the transaction prepared and then gives
// its connection back to the pool when the transaction ended on it (ended),
// or discards it.
func (tx *Tx) release(ended bool) {
	for _, s := range tx.stmts {
		// COM_STMT_CLOSE gets no answer: this does not wait for the server.
		_ = s.Close()
	}
	if ended {
		_ = tx.conn.Close()
		return
	}
	discard(tx.conn)
}

// discard closes conn's driver connection rather than return it to the
// pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
