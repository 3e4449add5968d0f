package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrLockHeld: another session holds a named lock (Lock).
var ErrLockHeld = errors.New("held by another session")

// ErrLockLost: the session that held a lock is gone (its connection
// dropped), so the lock is no longer held (Lease.Held).
var ErrLockLost = errors.New("lock lost")

// Lease is a named lock held on a connection of its own.
type Lease struct {
	conn    *sql.Conn
	name    string
	release func()
}

// Lock takes the named lock what, scoped to the database, on a connection
// of its own, waiting at most timeout (rounded up to whole seconds; 0: do
// not wait). An error wraps ErrLockHeld when another session holds it.
func Lock(ctx context.Context, db *sql.DB, what string, timeout time.Duration) (*Lease, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: get connection: %w", what, err)
	}
	name, err := lockName(ctx, conn, what)
	if err != nil {
		conn.Close()
		return nil, err
	}
	release, err := getLock(ctx, conn, name, timeout)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Lease{conn: conn, name: name, release: release}, nil
}

// Release releases the lock and its connection.
func (l *Lease) Release() {
	l.release()
	l.conn.Close()
}

// Held returns nil while this session still holds the lock, and an error
// wrapping ErrLockLost once its connection dropped (which released it).
func (l *Lease) Held(ctx context.Context) error {
	var mine sql.NullBool
	err := l.conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", l.name).Scan(&mine)
	if err != nil {
		return fmt.Errorf("lock %s: %w: %w", l.name, ErrLockLost, err)
	}
	if !mine.Valid || !mine.Bool {
		return fmt.Errorf("lock %s: %w", l.name, ErrLockLost)
	}
	return nil
}

// namedLock takes GET_LOCK(<database>.causeway.<what>) on conn, waiting up
// to timeout, and returns its release.
func namedLock(ctx context.Context, conn *sql.Conn, what string, timeout time.Duration) (func(), error) {
	name, err := lockName(ctx, conn, what)
	if err != nil {
		return nil, err
	}
	return getLock(ctx, conn, name, timeout)
}

// lockName is the server-wide name of lock what: GET_LOCK names are
// server-wide, so the database name is part of it, and two databases on one
// server do not wait for each other. MariaDB limits names to 64
// characters; a longer one is hashed.
func lockName(ctx context.Context, conn *sql.Conn, what string) (string, error) {
	var dbName sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&dbName); err != nil {
		return "", fmt.Errorf("lock %s: read database name: %w", what, err)
	}
	if !dbName.Valid {
		return "", fmt.Errorf("lock %s: the DSN names no database", what)
	}
	name := dbName.String + ".causeway." + what
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(name))
		name = "causeway." + what + "." + hex.EncodeToString(sum[:16])
	}
	return name, nil
}

func getLock(ctx context.Context, conn *sql.Conn, name string, timeout time.Duration) (func(), error) {
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, int(math.Ceil(timeout.Seconds()))).Scan(&got); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if !got.Valid {
		return nil, fmt.Errorf("lock %s: GET_LOCK failed", name)
	}
	if got.Int64 != 1 {
		return nil, fmt.Errorf("lock %s: %w (waited %s)", name, ErrLockHeld, timeout)
	}
	return func() {
		// A fresh context: the lock must be released even when ctx ended.
		// Should this fail, closing the connection releases it too.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, "DO RELEASE_LOCK(?)", name); err != nil {
			// Discard the connection rather than pool it with the lock held.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
}
