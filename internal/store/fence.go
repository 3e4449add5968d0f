package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrFenced reports a write by a leader whose raft term is lower than the
// term already stored for its fence: a deposed leader. The caller rolls
// its transaction back.
var ErrFenced = errors.New("fenced: a newer leader term is stored")

// CheckFence checks, inside the caller's transaction, that term is at
// least the term stored for the fence name, and raises the stored term to
// term when it is higher. It locks the fence row until tx ends, so of two
// leaders writing at once the older one waits and then fails with
// ErrFenced. A fence that does not exist yet is created at term.
func CheckFence(ctx context.Context, tx *sql.Tx, name string, term int64) error {
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
