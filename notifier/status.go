package notifier

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Status is one subscription as `causeway webhooks list|show|status` shows it.
type Status struct {
	ID      string          `json:"id"`
	Seq     int64           `json:"seq"`
	Deleted bool            `json:"deleted"`
	Spec    json.RawMessage `json:"spec,omitempty"`
	// Cursor: the next row to deliver.
	NextSeq int64 `json:"next_seq"`
	NextOrd int   `json:"next_ord"`
	// Pending rows now (counted), and the age of the oldest.
	Pending        int64      `json:"pending"`
	OldestQueuedAt *time.Time `json:"oldest_queued_at,omitempty"`
	// OldestAgeSeconds is the oldest pending row's age by the database's
	// clock, which stamped it (not by the reader's, which may be skewed).
	OldestAgeSeconds float64    `json:"oldest_age_seconds,omitempty"`
	DeadLetters      int64      `json:"dead_letters"`
	Delivered        int64      `json:"delivered"`
	LeaseOwner       string     `json:"lease_owner,omitempty"`
	LeaseExpires     *time.Time `json:"lease_expires,omitempty"`
	FailingSince     *time.Time `json:"failing_since,omitempty"`
	LastError        string     `json:"last_error,omitempty"`
	LastSuccessAt    *time.Time `json:"last_success_at,omitempty"`
	MaxBacklog       int        `json:"max_backlog"`
	BacklogPolicy    string     `json:"backlog_policy"`
	BacklogOverLimit bool       `json:"backlog_over_limit"`
}

// Statuses reads every subscription's status (id "" for all), sorted by
// id. cfg supplies the default policy for the backlog limit.
func Statuses(ctx context.Context, sqldb *sql.DB, cfg Config, id string) ([]Status, error) {
	cfg.SetDefaults()
	q := `SELECT s.id, s.seq, s.deleted, s.spec,
	        COALESCE(c.next_seq, 0), COALESCE(c.next_ord, 0), COALESCE(c.delivered, 0), COALESCE(c.lease_owner, ''),
	        c.lease_expires, c.failing_since, COALESCE(c.last_error, ''), c.last_success_at
	      FROM notifier_subscriptions s LEFT JOIN notifier_cursors c ON c.subscription_id = s.id`
	args := []any{}
	if id != "" {
		q += " WHERE s.id = ?"
		args = append(args, id)
	}
	rows, err := sqldb.QueryContext(ctx, q+" ORDER BY s.id", args...)
	if err != nil {
		return nil, fmt.Errorf("read subscription status: %w", err)
	}
	var out []Status
	for rows.Next() {
		var s Status
		var spec []byte
		var lease, failing, success sql.NullTime
		if err := rows.Scan(&s.ID, &s.Seq, &s.Deleted, &spec, &s.NextSeq, &s.NextOrd, &s.Delivered, &s.LeaseOwner,
			&lease, &failing, &s.LastError, &success); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read subscription status: %w", err)
		}
		if len(spec) > 0 {
			s.Spec = spec
		}
		s.LeaseExpires, s.FailingSince, s.LastSuccessAt = timePtr(lease), timePtr(failing), timePtr(success)
		if s.LeaseExpires != nil && s.LeaseExpires.Before(time.Unix(1, 0)) {
			s.LeaseExpires = nil
		}
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read subscription status: %w", err)
	}
	d := &db{sql: sqldb}
	for i := range out {
		s := &out[i]
		var oldest time.Time
		var age time.Duration
		if s.Pending, oldest, age, err = d.backlog(ctx, s.ID, pos{s.NextSeq, s.NextOrd}); err != nil {
			return nil, err
		}
		s.OldestAgeSeconds = age.Seconds()
		if !oldest.IsZero() {
			s.OldestQueuedAt = &oldest
		}
		if err := sqldb.QueryRowContext(ctx, "SELECT COUNT(*) FROM notifier_dead_letters WHERE subscription_id = ?", s.ID).Scan(&s.DeadLetters); err != nil {
			return nil, fmt.Errorf("count dead letters of %s: %w", s.ID, err)
		}
		pol := cfg.policyFor(specOf(s.Spec))
		s.MaxBacklog, s.BacklogPolicy = pol.maxBacklog, pol.backlogPolicy
		s.BacklogOverLimit = s.Pending > int64(pol.maxBacklog)
	}
	return out, nil
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time
	return &v
}
