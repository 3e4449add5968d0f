package store

import (
	"context"
	"database/sql"
	"time"
)

// SetIdleTimeout sets how long the server keeps an Append's transaction
// open while its writer sends nothing, for tests of a writer that is gone.
func (l *Log) SetIdleTimeout(d time.Duration) { l.idleTimeout = d }

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
