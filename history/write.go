package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// Reconciled says what Batch.Reconcile changed.
	Reconciled Reconciled
}

// Reconciled counts the rows a write changed to agree with Batch.Reconcile.
type Reconciled struct {
	// Applied says the state was applied (the stored head was below it).
	Applied bool
	// Closed and Opened count the occurrences closed (their alarm not
	// active in the state) and opened (active, with no occurrence);
	// Severities those left open whose severity was brought to the
	// state's.
	Closed, Opened, Severities int
	// LinksEnded and LinksStarted count the links likewise.
	LinksEnded, LinksStarted int
}

// Changed reports whether the history changed.
func (r Reconciled) Changed() bool {
	return r.Closed+r.Opened+r.Severities+r.LinksEnded+r.LinksStarted > 0
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
// batch again, or an overlapping one, changes nothing, so a retry after an
// error that left the commit's outcome unknown (ctx ended while its answer
// was awaited: ctx bounds the COMMIT too, store.Tx) is safe.
//
// When b.Reconcile is above the stored head, the history is first made to
// agree with it (see reconcile), in the same transaction, and the items at
// or below it are skipped.
func Write(ctx context.Context, db *sql.DB, term int64, b Batch) (Result, error) {
	if r := b.Reconcile; r != nil && r.Seq > b.Seq {
		return Result{}, fmt.Errorf("write history to seq %d: the state to reconcile with is at seq %d, after it", b.Seq, r.Seq)
	}
	tx, err := store.Begin(ctx, db)
	if err != nil {
		return Result{}, fmt.Errorf("write history to seq %d: begin: %w", b.Seq, err)
	}
	defer tx.Rollback(ctx)
	if err := store.CheckFence(ctx, tx, FenceName, term); err != nil {
		return Result{}, fmt.Errorf("write history to seq %d: %w", b.Seq, err)
	}
	var head int64
	err = tx.QueryRowContext(ctx, "SELECT seq FROM alarm_history_head WHERE name = ? FOR UPDATE", headName).Scan(&head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Result{}, fmt.Errorf("write history to seq %d: read head: %w", b.Seq, err)
	}
	res := Result{Head: max(head, b.Seq)}
	after := head
	if r := b.Reconcile; r != nil && r.Seq > head {
		if r.RecordedAt.IsZero() {
			return Result{}, fmt.Errorf("write history to seq %d: the state to reconcile with, at seq %d, has no recorded time", b.Seq, r.Seq)
		}
		if res.Reconciled, err = reconcile(ctx, tx, term, head, *r); err != nil {
			return Result{}, fmt.Errorf("write history to seq %d: reconcile with the state at seq %d: %w", b.Seq, r.Seq, err)
		}
		after = r.Seq
	}
	items := make([]Item, 0, len(b.Items))
	for _, it := range b.Items {
		if it.Seq > after {
			items = append(items, it)
		}
	}
	if err := writeItems(ctx, tx, term, items); err != nil {
		return Result{}, fmt.Errorf("write history to seq %d: %w", b.Seq, err)
	}
	res.Written = len(items)
	if b.Seq > head {
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO alarm_history_head (name, seq, term, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6)) "+
				"ON DUPLICATE KEY UPDATE seq = GREATEST(seq, VALUES(seq)), term = VALUES(term), updated_at = VALUES(updated_at)",
			headName, b.Seq, term); err != nil {
			return Result{}, fmt.Errorf("write history to seq %d: raise head: %w", b.Seq, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
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

// maxRun bounds the rows of one statement.
const maxRun = 500

// writeItems writes items in order, in runs of one kind in which no alarm
// (or link) appears twice, each run one multi-row statement or two: within
// a run the order does not matter, and across runs it is kept, so an alarm
// raised, cleared and raised again in one batch is written as it happened.
func writeItems(ctx context.Context, tx *store.Tx, term int64, items []Item) error {
	for start := 0; start < len(items); {
		kind := items[start].Kind
		seen := map[string]bool{}
		end := start
		for end < len(items) && items[end].Kind == kind && end-start < maxRun {
			k := items[end].Alarm.Key
			if kind == LinkStarted || kind == LinkEnded {
				k = items[end].From + "\x00" + items[end].To
			}
			if seen[k] {
				break
			}
			seen[k] = true
			end++
		}
		if err := writeRun(ctx, tx, term, kind, items[start:end]); err != nil {
			return fmt.Errorf("%d %s items at seq %d..%d: %w", end-start, kind, items[start].Seq, items[end-1].Seq, err)
		}
		start = end
	}
	return nil
}

// values returns "(?,..,?),(?,..,?)" for rows of n placeholders.
func values(rows, n int) string {
	one := "(?" + strings.Repeat(",?", n-1) + ")"
	return one + strings.Repeat(","+one, rows-1)
}

// derived returns a derived table of rows with the named columns, for an
// UPDATE ... JOIN: (SELECT ? AS a, ? AS b UNION ALL SELECT ?, ? ...).
func derived(rows int, cols ...string) string {
	var b strings.Builder
	b.WriteString("(SELECT ? AS " + strings.Join(cols, ", ? AS "))
	for i := 1; i < rows; i++ {
		b.WriteString(" UNION ALL SELECT ?" + strings.Repeat(", ?", len(cols)-1))
	}
	b.WriteString(")")
	return b.String()
}

func writeRun(ctx context.Context, tx *store.Tx, term int64, kind Kind, run []Item) error {
	var args []any
	switch kind {
	case Raised:
		for _, it := range run {
			a := it.Alarm
			args = append(args, OccurrenceID(a.Key, it.Seq), a.Key, a.VitrageID, a.Type, a.ID, a.Name,
				a.Resource.Key, a.Resource.Type, a.Resource.ID, a.Resource.Name,
				a.Deduced, a.Severity, a.Severity, it.Seq, it.Seq, it.RecordedAt.UTC(), nullTime(a.EventAt), term)
		}
		_, err := tx.ExecContext(ctx, `INSERT IGNORE INTO alarm_history
 (id, alarm_key, vitrage_id, alarm_type, alarm_id, name, resource_key, resource_type, resource_id, resource_name,
  deduced, raised_severity, severity, severity_seq, raised_seq, raised_at, raised_event_at, term) VALUES `+values(len(run), 18), args...)
		return err
	case Cleared:
		for _, it := range run {
			args = append(args, it.Alarm.Key, it.Seq, it.RecordedAt.UTC(), nullTime(it.Alarm.EventAt))
		}
		args = append(args, term)
		_, err := tx.ExecContext(ctx, "UPDATE alarm_history h JOIN "+derived(len(run), "k", "s", "at", "ev")+
			` c ON h.alarm_key = c.k SET h.cleared_seq = c.s, h.cleared_at = c.at, h.cleared_event_at = c.ev, h.term = ?
 WHERE h.cleared_seq IS NULL AND h.raised_seq < c.s`, args...)
		return err
	case SeverityChanged:
		for _, it := range run {
			args = append(args, severityChangeID(it.Alarm.Key, it.Seq), it.Alarm.Key, it.Seq, it.RecordedAt.UTC(), it.PrevSeverity, it.Alarm.Severity, term)
		}
		if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO alarm_severity_changes
 (id, alarm_key, seq, recorded_at, prev_severity, severity, term) VALUES `+values(len(run), 7), args...); err != nil {
			return err
		}
		args = args[:0]
		for _, it := range run {
			args = append(args, it.Alarm.Key, it.Seq, it.Alarm.Severity)
		}
		args = append(args, term)
		_, err := tx.ExecContext(ctx, "UPDATE alarm_history h JOIN "+derived(len(run), "k", "s", "sev")+
			` c ON h.alarm_key = c.k SET h.severity = c.sev, h.severity_seq = c.s, h.term = ?
 WHERE h.raised_seq < c.s AND h.severity_seq < c.s AND (h.cleared_seq IS NULL OR h.cleared_seq > c.s)`, args...)
		return err
	case LinkStarted:
		for _, it := range run {
			args = append(args, LinkID(it.From, it.To, it.Seq), it.From, it.To, it.Seq, it.RecordedAt.UTC(), term)
		}
		_, err := tx.ExecContext(ctx, `INSERT IGNORE INTO alarm_causal_links
 (id, from_key, to_key, start_seq, start_at, term) VALUES `+values(len(run), 6), args...)
		return err
	case LinkEnded:
		for _, it := range run {
			args = append(args, it.From, it.To, it.Seq, it.RecordedAt.UTC())
		}
		args = append(args, term)
		_, err := tx.ExecContext(ctx, "UPDATE alarm_causal_links l JOIN "+derived(len(run), "f", "t", "s", "at")+
			` c ON l.from_key = c.f AND l.to_key = c.t SET l.end_seq = c.s, l.end_at = c.at, l.term = ?
 WHERE l.end_seq IS NULL AND l.start_seq < c.s`, args...)
		return err
	}
	return fmt.Errorf("unknown item kind %q", kind)
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
	// LostRanges counts the lost ranges that ended before the boundary:
	// the moments they qualify are past it, and a window reaching them
	// says it is incomplete already.
	LostRanges int64
}

// pruneChunk bounds the rows one DELETE removes, to keep transactions short.
const pruneChunk = 5000

// Prune deletes, before the boundary, the occurrences cleared, the links
// and the lost ranges ended, and the severity changes recorded, but those of an occurrence it
// keeps: active occurrences and links stay, and so do the changes that say
// which severity such an occurrence had when. Each chunk is its own
// transaction fenced at term.
//
// First, in its own fenced transaction, it raises the stored boundary
// (Coverage.CompleteFrom) to before, so that a query that could miss a
// row deleted here already says that its window is incomplete.
func Prune(ctx context.Context, db *sql.DB, term int64, before time.Time) (Pruned, error) {
	var p Pruned
	// A whole microsecond, the history's precision, sent so: the rows
	// deleted are exactly those that ended before the stored boundary.
	before = floorMicro(before)
	if err := recordPruned(ctx, db, term, before); err != nil {
		return p, fmt.Errorf("prune history before %s: %w", before.Format(time.RFC3339), err)
	}
	for _, s := range []struct {
		q string
		n *int64
	}{
		{"DELETE FROM alarm_history WHERE cleared_at < ? LIMIT ?", &p.Occurrences},
		// After the occurrences: the changes of one removed go with it.
		{"DELETE FROM alarm_severity_changes WHERE recorded_at < ? AND NOT EXISTS (SELECT 1 FROM alarm_history h" +
			" WHERE h.alarm_key = alarm_severity_changes.alarm_key AND h.raised_seq < alarm_severity_changes.seq" +
			" AND (h.cleared_seq IS NULL OR h.cleared_seq > alarm_severity_changes.seq)) LIMIT ?", &p.SeverityChanges},
		{"DELETE FROM alarm_causal_links WHERE end_at < ? LIMIT ?", &p.Links},
		{"DELETE FROM alarm_history_lost_ranges WHERE at < ? LIMIT ?", &p.LostRanges},
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
	tx, err := store.Begin(ctx, db)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
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
	return n, tx.Commit(ctx)
}

// recordPruned raises the stored retention boundary to before (never
// lowers it), fenced at term.
func recordPruned(ctx context.Context, db *sql.DB, term int64, before time.Time) error {
	tx, err := store.Begin(ctx, db)
	if err != nil {
		return fmt.Errorf("record the boundary: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := store.CheckFence(ctx, tx, FenceName, term); err != nil {
		return fmt.Errorf("record the boundary: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO alarm_history_pruned (name, pruned_before, term, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6)) "+
			"ON DUPLICATE KEY UPDATE pruned_before = GREATEST(pruned_before, VALUES(pruned_before)), term = VALUES(term), updated_at = VALUES(updated_at)",
		headName, before, term); err != nil {
		return fmt.Errorf("record the boundary: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record the boundary: commit: %w", err)
	}
	return nil
}
