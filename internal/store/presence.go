package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// PresenceInterval is how often a running processor refreshes its
// presence row (Announce); PresenceTimeout is how long a row stays
// current without a refresh: a processor killed without a clean stop
// counts as gone after it.
const (
	PresenceInterval = 5 * time.Second
	PresenceTimeout  = 3 * PresenceInterval
)

// presenceCheck is how often Announce looks at its node's state, so
// that a change of readiness reaches the row within about that long.
const presenceCheck = time.Second

// Presence is one processor's row.
type Presence struct {
	NodeID    string
	StartedAt time.Time
	SeenAt    time.Time
	NodeState
}

// NodeState is what a processor's row says of it besides being there.
type NodeState struct {
	// Ready: loaded, and caught up with the log (its /readyz).
	Ready bool
	// AppliedSeq is the seq of the last record it applied.
	AppliedSeq int64
}

// Announce keeps nodeID's presence row current until ctx ends, then
// deletes it (unless another run of the same node id has taken the row
// over meanwhile). The row is refreshed every PresenceInterval, and at
// once when the node's readiness (state, looked at every second) changes.
// A failed refresh is logged and tried again as a refresh would be; each
// is bounded by PresenceInterval.
func Announce(ctx context.Context, db *sql.DB, nodeID string, state func() NodeState, log *slog.Logger) error {
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	instance := hex.EncodeToString(tok[:])
	refresh := func(st NodeState) error {
		rctx, cancel := context.WithTimeout(ctx, PresenceInterval)
		defer cancel()
		// MariaDB assigns left to right: started_at is compared with the
		// instance before the instance is replaced.
		_, err := db.ExecContext(rctx, `INSERT INTO processor_presence (node_id, instance, started_at, seen_at, ready, applied_seq)
			VALUES (?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?) ON DUPLICATE KEY UPDATE
			  started_at = IF(instance = VALUES(instance), started_at, VALUES(started_at)),
			  instance = VALUES(instance), seen_at = VALUES(seen_at),
			  ready = VALUES(ready), applied_seq = VALUES(applied_seq)`, nodeID, instance, st.Ready, st.AppliedSeq)
		return err
	}
	t := time.NewTicker(presenceCheck)
	defer t.Stop()
	var tried NodeState
	var triedAt time.Time
	for {
		if st := state(); triedAt.IsZero() || st.Ready != tried.Ready || time.Since(triedAt) >= PresenceInterval {
			tried, triedAt = st, time.Now()
			if err := refresh(st); err != nil && ctx.Err() == nil {
				log.Warn("presence: refresh failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := db.ExecContext(dctx, "DELETE FROM processor_presence WHERE node_id = ? AND instance = ?", nodeID, instance); err != nil {
				log.Warn("presence: delete on stop failed; the row ages out", "err", err, "after", PresenceTimeout)
			}
			return nil
		case <-t.C:
		}
	}
}

// Present returns the processors whose presence row is current (refreshed
// within PresenceTimeout, by the database's clock), by node id.
func Present(ctx context.Context, db *sql.DB) ([]Presence, error) {
	rows, err := db.QueryContext(ctx, `SELECT node_id, started_at, seen_at, ready, applied_seq FROM processor_presence
		WHERE seen_at > UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND ORDER BY node_id`, PresenceTimeout.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("read processor presence: %w", err)
	}
	defer rows.Close()
	var out []Presence
	for rows.Next() {
		var p Presence
		if err := rows.Scan(&p.NodeID, &p.StartedAt, &p.SeenAt, &p.Ready, &p.AppliedSeq); err != nil {
			return nil, fmt.Errorf("read processor presence: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read processor presence: %w", err)
	}
	return out, nil
}
