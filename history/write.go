package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
)

// FenceName is the fencing row the history's writes check: the leader's,
// shared with snapshots (snapshot.DefaultFenceName) and the outbox.
const FenceName = "leader"

const headName = "history"

// Result says what Write did.
type Result struct {
	// Written counts the items applied (those above the stored head).
	Written int
	// Head is the stored head after the write.
	Head int64
}

// Head returns the last seq whose history is written (0: none).
func Head(ctx context.Context, db *sql.DB) (int64, error) {
	var seq int64
	err := db.QueryRowContext(ctx, "SELECT seq FROM alarm_history_head WHERE name = ?", headName).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read history head: %w", err)
	}
	return seq, nil
}

// OccurrenceID is the id of the occurrence of alarm key raised at seq.
func OccurrenceID(key string, seq int64) string {
	return event.DeriveID("alarm", key, strconv.FormatInt(seq, 10))
}

// LinkID is the id of the period of the link from -> to that started at seq.
func LinkID(from, to string, seq int64) string {
	return event.DeriveID("link", from, to, strconv.FormatInt(seq, 10))
}

func severityChangeID(key string, seq int64) string {
	return event.DeriveID("severity", key, strconv.FormatInt(seq, 10))
}

// Write stores b in one transaction fenced at term (an error wrapping
// store.ErrFenced when a newer term is stored). Items at or below the
// stored head are skipped; the head is raised to b.Seq. Writing the same
// batch again, or an overlapping one, changes nothing.
func Write(ctx context.Context, db *sql.DB, term int64, b Batch) (Result, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return Result{}, fmt.Errorf("write history to seq %d: begin: %w", b.Seq, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := store.CheckFence(ctx, tx, FenceName, term); err != nil {
		return Result{}, fmt.Errorf("write history to seq %d: %w", b.Seq, err)
	}
	var head int64
	err = tx.QueryRowContext(ctx, "SELECT seq FROM alarm_history_head WHERE name = ? FOR UPDATE", headName).Scan(&head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Result{}, fmt.Errorf("write history to seq %d: read head: %w", b.Seq, err)
	}
	res := Result{Head: max(head, b.Seq)}
	for _, it := range b.Items {
		if it.Seq <= head {
			continue
		}
		if err := writeItem(ctx, tx, term, it); err != nil {
			return Result{}, fmt.Errorf("write history to seq %d: %s at seq %d: %w", b.Seq, it.Kind, it.Seq, err)
		}
		res.Written++
	}
	if b.Seq > head {
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO alarm_history_head (name, seq, term, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6)) "+
				"ON DUPLICATE KEY UPDATE seq = GREATEST(seq, VALUES(seq)), term = VALUES(term), updated_at = VALUES(updated_at)",
			headName, b.Seq, term); err != nil {
			return Result{}, fmt.Errorf("write history to seq %d: raise head: %w", b.Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Result{}, fmt.Errorf("write history to seq %d: commit: %w", b.Seq, err)
	}
	return res, nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func writeItem(ctx context.Context, tx *sql.Tx, term int64, it Item) error {
	a := it.Alarm
	var err error
	switch it.Kind {
	case Raised:
		_, err = tx.ExecContext(ctx, `INSERT IGNORE INTO alarm_history
 (id, alarm_key, vitrage_id, alarm_type, alarm_id, name, resource_key, resource_type, resource_id, resource_name,
  deduced, raised_severity, severity, severity_seq, raised_seq, raised_at, raised_event_at, term)
 VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			OccurrenceID(a.Key, it.Seq), a.Key, a.VitrageID, a.Type, a.ID, a.Name,
			a.Resource.Key, a.Resource.Type, a.Resource.ID, a.Resource.Name,
			a.Deduced, a.Severity, a.Severity, it.Seq, it.Seq, it.RecordedAt.UTC(), nullTime(a.EventAt), term)
	case Cleared:
		_, err = tx.ExecContext(ctx, `UPDATE alarm_history SET cleared_seq = ?, cleared_at = ?, cleared_event_at = ?, term = ?
 WHERE alarm_key = ? AND cleared_seq IS NULL AND raised_seq < ?`,
			it.Seq, it.RecordedAt.UTC(), nullTime(a.EventAt), term, a.Key, it.Seq)
	case SeverityChanged:
		if _, err = tx.ExecContext(ctx, `INSERT IGNORE INTO alarm_severity_changes
 (id, alarm_key, seq, recorded_at, prev_severity, severity, term) VALUES (?,?,?,?,?,?,?)`,
			severityChangeID(a.Key, it.Seq), a.Key, it.Seq, it.RecordedAt.UTC(), it.PrevSeverity, a.Severity, term); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE alarm_history SET severity = ?, severity_seq = ?, term = ?
 WHERE alarm_key = ? AND raised_seq < ? AND severity_seq < ? AND (cleared_seq IS NULL OR cleared_seq > ?)`,
			a.Severity, it.Seq, term, a.Key, it.Seq, it.Seq, it.Seq)
	case LinkStarted:
		_, err = tx.ExecContext(ctx, `INSERT IGNORE INTO alarm_causal_links
 (id, from_key, to_key, start_seq, start_at, term) VALUES (?,?,?,?,?,?)`,
			LinkID(it.From, it.To, it.Seq), it.From, it.To, it.Seq, it.RecordedAt.UTC(), term)
	case LinkEnded:
		_, err = tx.ExecContext(ctx, `UPDATE alarm_causal_links SET end_seq = ?, end_at = ?, term = ?
 WHERE from_key = ? AND to_key = ? AND end_seq IS NULL AND start_seq < ?`,
			it.Seq, it.RecordedAt.UTC(), term, it.From, it.To, it.Seq)
	default:
		return fmt.Errorf("unknown item kind %q", it.Kind)
	}
	return err
}

// DefaultRetention is how long the history keeps what ended: the event
// log's default retention.
const DefaultRetention = 30 * 24 * time.Hour

// Config is the history's retention (YAML section of the leader's config).
type Config struct {
	// Retention keeps occurrences and links that ended, and severity
	// changes, for this long (default 30 days, as the event log).
	Retention time.Duration `yaml:"retention"`
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// Validate reports a bad retention.
func (c Config) Validate() error {
	if c.WithDefaults().Retention < 0 {
		return fmt.Errorf("retention: %s is negative", c.Retention)
	}
	return nil
}

// Boundary is the retention boundary at now.
func (c Config) Boundary(now time.Time) time.Time { return now.Add(-c.WithDefaults().Retention).UTC() }

// Pruned counts the rows Prune deleted.
type Pruned struct {
	Occurrences, SeverityChanges, Links int64
}

// pruneChunk bounds the rows one DELETE removes, to keep transactions short.
const pruneChunk = 5000

// Prune deletes, before the boundary, the occurrences cleared and the links
// ended, and the severity changes recorded; active occurrences and links
// stay. Each chunk is its own transaction fenced at term.
func Prune(ctx context.Context, db *sql.DB, term int64, before time.Time) (Pruned, error) {
	var p Pruned
	for _, s := range []struct {
		q string
		n *int64
	}{
		{"DELETE FROM alarm_history WHERE cleared_at < ? LIMIT ?", &p.Occurrences},
		{"DELETE FROM alarm_severity_changes WHERE recorded_at < ? LIMIT ?", &p.SeverityChanges},
		{"DELETE FROM alarm_causal_links WHERE end_at < ? LIMIT ?", &p.Links},
	} {
		for {
			n, err := pruneOnce(ctx, db, term, s.q, before.UTC())
			if err != nil {
				return p, fmt.Errorf("prune history before %s: %w", before.UTC().Format(time.RFC3339), err)
			}
			*s.n += n
			if n < pruneChunk {
				break
			}
		}
	}
	return p, nil
}

func pruneOnce(ctx context.Context, db *sql.DB, term int64, q string, before time.Time) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if err := store.CheckFence(ctx, tx, FenceName, term); err != nil {
		return 0, err
	}
	r, err := tx.ExecContext(ctx, q, before, pruneChunk)
	if err != nil {
		return 0, err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
