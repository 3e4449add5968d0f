package store

import (
	"context"
	"database/sql"
	"time"
)

// SetTxIdleTimeout sets how long the server keeps a Tx open while its
// client sends nothing, for tests of a client that is gone; it returns the
// previous bound.
func SetTxIdleTimeout(d time.Duration) time.Duration {
	old := txIdleTimeout
	txIdleTimeout = d
	return old
}

// MigrateThrough applies the embedded migrations up to version last: for
// tests that put rows in the shape an earlier release wrote them.
func MigrateThrough(ctx context.Context, db *sql.DB, last int) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var upTo []Migration
	for _, m := range ms {
		if m.Version <= last {
			upTo = append(upTo, m)
		}
	}
	return migrate(ctx, db, upTo)
}

// SetOpenTimeout sets how long Open waits for its first connection, for
// tests of a server that never answers; it returns the previous bound.
func SetOpenTimeout(d time.Duration) time.Duration {
	old := openTimeout
	openTimeout = d
	return old
}

// SetTrimChunk sets the rows of one TrimThrough statement, for tests of a
// trim in several; it returns the previous bound.
func SetTrimChunk(n int) int {
	old := trimChunk
	trimChunk = n
	return old
}
