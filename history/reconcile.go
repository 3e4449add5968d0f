package history

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/causeway/causeway/internal/store"
)

// reconcile makes the stored history agree with s, the whole state after
// the record s.Seq, when the records after the stored head (after) up to
// s.Seq are past retention: what happened in them is known only by its
// outcome at s.Seq. When a row made here began or ended is not known, only
// that it was after `after` and at or before s.Seq: its seq and time are
// s's (the latest it can have been), and its *_after_seq column holds
// after, which marks the bound approximate.
//
//   - An open occurrence, raised at or before s.Seq, whose alarm is not
//     active in s is closed at s.Seq (cleared_after_seq).
//   - An alarm active in s without an occurrence active at s.Seq gets one
//     raised at s.Seq (raised_after_seq), its id derived from its key and
//     s.Seq as any occurrence's; its raising event time is unknown (NULL).
//   - An occurrence active at s.Seq whose alarm is active in s with another
//     severity takes s's, at s.Seq; the changes in between are lost.
//   - Links likewise: ended at s.Seq (end_after_seq) or started at s.Seq
//     (start_after_seq).
//   - An open occurrence whose alarm is active in s on another vertex
//     (vitrage id) is not that alarm's: the vertex it recorded was
//     cleared, purged (graph.DeletedRetention) and the alarm raised again
//     on a new one, all in the lost range. It is closed at s.Seq and the
//     alarm gets a new one, as above; the links into or out of it, whose
//     edges went with the purged vertex, end at s.Seq likewise, and those
//     that hold in s start again.
//
// In the history, a row is active at s.Seq when it began at or before it
// and did not end at or before it. So running reconcile again changes
// nothing, even after the items past s.Seq were written (should the head
// be lost): the rows it made are active at s.Seq, those that later items
// closed included. An alarm that cleared and was raised again inside the
// lost range on the same vertex keeps its one occurrence: the state
// cannot tell.
//
// It is derived from s and the stored rows only, never the wall clock. It
// counts rows changed, so a second run reports nothing.
func reconcile(ctx context.Context, tx *store.Tx, term, after int64, s State) (Reconciled, error) {
	r := Reconciled{Applied: true}
	if err := recordLostRange(ctx, tx, term, after, s); err != nil {
		return r, err
	}
	renewed, err := reconcileOccurrences(ctx, tx, term, after, s, &r)
	if err != nil {
		return r, err
	}
	if err := reconcileLinks(ctx, tx, term, after, s, renewed, &r); err != nil {
		return r, err
	}
	return r, nil
}

// reconcileOccurrences reconciles the occurrences, and returns the keys of
// the alarms raised again on a new vertex in the lost range.
func reconcileOccurrences(ctx context.Context, tx *store.Tx, term, after int64, s State, r *Reconciled) (map[string]bool, error) {
	active := make(map[string]Alarm, len(s.Alarms))
	for _, a := range s.Alarms {
		active[a.Key] = a
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, alarm_key, vitrage_id, severity, severity_seq, cleared_seq IS NULL FROM alarm_history
 WHERE raised_seq <= ? AND (cleared_seq IS NULL OR cleared_seq > ?) ORDER BY id`, s.Seq, s.Seq)
	if err != nil {
		return nil, fmt.Errorf("read the occurrences active at seq %d: %w", s.Seq, err)
	}
	stored := map[string]bool{}
	renewed := map[string]bool{}
	var closing []any
	var severities []any // id, severity pairs
	var changes []any    // the severity change rows, 8 columns each
	for rows.Next() {
		var id, key, sev string
		var vid, sevSeq int64
		var open bool
		if err := rows.Scan(&id, &key, &vid, &sev, &sevSeq, &open); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the occurrences active at seq %d: %w", s.Seq, err)
		}
		a, ok := active[key]
		if ok && open && a.VitrageID != vid {
			// Another vertex holds the key: this one was purged, so the
			// alarm cleared and was raised again in the lost range.
			closing = append(closing, id)
			renewed[key] = true
			continue
		}
		stored[key] = true
		switch {
		case !ok && open:
			closing = append(closing, id)
		case ok && a.Severity != sev && sevSeq < s.Seq:
			// (A severity set after the base, by an exact change, was
			// another at the base: the change row says which.)
			severities = append(severities, id, a.Severity)
			changes = append(changes, severityChangeID(key, s.Seq), key, s.Seq, s.RecordedAt.UTC(), sev, a.Severity, term, after)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("read the occurrences active at seq %d: %w", s.Seq, err)
	}

	n, err := closeByID(ctx, tx, closing, `UPDATE alarm_history SET cleared_seq = ?, cleared_at = ?, cleared_event_at = NULL, cleared_after_seq = ?, term = ?
 WHERE cleared_seq IS NULL`, s.Seq, s.RecordedAt.UTC(), after, term)
	r.Closed += n
	if err != nil {
		return nil, fmt.Errorf("close occurrences at seq %d: %w", s.Seq, err)
	}

	var opening []Alarm
	for _, a := range s.Alarms {
		if !stored[a.Key] {
			opening = append(opening, a)
		}
	}
	for start := 0; start < len(opening); start += maxRun {
		run := opening[start:min(start+maxRun, len(opening))]
		var args []any
		for _, a := range run {
			args = append(args, OccurrenceID(a.Key, s.Seq), a.Key, a.VitrageID, a.Type, a.ID, a.Name,
				a.Resource.Key, a.Resource.Type, a.Resource.ID, a.Resource.Name,
				a.Deduced, a.Severity, a.Severity, s.Seq, s.Seq, s.RecordedAt.UTC(), nil, after, term)
		}
		n, err := exec(ctx, tx, `INSERT IGNORE INTO alarm_history
 (id, alarm_key, vitrage_id, alarm_type, alarm_id, name, resource_key, resource_type, resource_id, resource_name,
  deduced, raised_severity, severity, severity_seq, raised_seq, raised_at, raised_event_at, raised_after_seq, term) VALUES `+values(len(run), 19), args...)
		if err != nil {
			return nil, fmt.Errorf("open %d occurrences at seq %d: %w", len(run), s.Seq, err)
		}
		r.Opened += n
	}

	// Each severity that changed in the lost range gets its change row,
	// as approximate as the rest (after_seq), then the occurrence takes it.
	for start := 0; start < len(changes); start += 8 * maxRun {
		run := changes[start:min(start+8*maxRun, len(changes))]
		if _, err := exec(ctx, tx, `INSERT IGNORE INTO alarm_severity_changes
 (id, alarm_key, seq, recorded_at, prev_severity, severity, term, after_seq) VALUES `+values(len(run)/8, 8), run...); err != nil {
			return nil, fmt.Errorf("record %d severity changes at seq %d: %w", len(run)/8, s.Seq, err)
		}
	}
	for start := 0; start < len(severities); start += 2 * maxRun {
		pairs := severities[start:min(start+2*maxRun, len(severities))]
		args := append(append([]any{}, pairs...), s.Seq, term, s.Seq)
		n, err := exec(ctx, tx, "UPDATE alarm_history h JOIN "+derived(len(pairs)/2, "i", "sev")+
			` c ON h.id = c.i SET h.severity = c.sev, h.severity_seq = ?, h.term = ? WHERE h.severity_seq < ?`, args...)
		if err != nil {
			return nil, fmt.Errorf("set the severity of %d occurrences at seq %d: %w", len(pairs)/2, s.Seq, err)
		}
		r.Severities += n
	}
	return renewed, nil
}

// reconcileLinks reconciles the links; those into or out of a renewed
// alarm ended in the lost range, with its purged vertex.
func reconcileLinks(ctx context.Context, tx *store.Tx, term, after int64, s State, renewed map[string]bool, r *Reconciled) error {
	active := make(map[LinkKey]bool, len(s.Links))
	for _, l := range s.Links {
		active[l] = true
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, from_key, to_key, end_seq IS NULL FROM alarm_causal_links
 WHERE start_seq <= ? AND (end_seq IS NULL OR end_seq > ?) ORDER BY id`, s.Seq, s.Seq)
	if err != nil {
		return fmt.Errorf("read the links active at seq %d: %w", s.Seq, err)
	}
	stored := map[LinkKey]bool{}
	var ending []any
	for rows.Next() {
		var id string
		var l LinkKey
		var open bool
		if err := rows.Scan(&id, &l.From, &l.To, &open); err != nil {
			rows.Close()
			return fmt.Errorf("read the links active at seq %d: %w", s.Seq, err)
		}
		if open && (renewed[l.From] || renewed[l.To]) {
			ending = append(ending, id)
			continue
		}
		stored[l] = true
		if !active[l] && open {
			ending = append(ending, id)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("read the links active at seq %d: %w", s.Seq, err)
	}

	n, err := closeByID(ctx, tx, ending, `UPDATE alarm_causal_links SET end_seq = ?, end_at = ?, end_after_seq = ?, term = ?
 WHERE end_seq IS NULL`, s.Seq, s.RecordedAt.UTC(), after, term)
	r.LinksEnded += n
	if err != nil {
		return fmt.Errorf("end links at seq %d: %w", s.Seq, err)
	}

	var starting []LinkKey
	for _, l := range s.Links {
		if !stored[l] {
			starting = append(starting, l)
		}
	}
	for start := 0; start < len(starting); start += maxRun {
		run := starting[start:min(start+maxRun, len(starting))]
		var args []any
		for _, l := range run {
			args = append(args, LinkID(l.From, l.To, s.Seq), l.From, l.To, s.Seq, s.RecordedAt.UTC(), after, term)
		}
		n, err := exec(ctx, tx, `INSERT IGNORE INTO alarm_causal_links
 (id, from_key, to_key, start_seq, start_at, start_after_seq, term) VALUES `+values(len(run), 7), args...)
		if err != nil {
			return fmt.Errorf("start %d links at seq %d: %w", len(run), s.Seq, err)
		}
		r.LinksStarted += n
	}
	return nil
}

// closeByID runs update (an UPDATE ... WHERE condition taking args) over
// the rows of ids, in runs of at most maxRun ids, and counts the rows it
// changed.
func closeByID(ctx context.Context, tx *store.Tx, ids []any, update string, args ...any) (int, error) {
	changed := 0
	for start := 0; start < len(ids); start += maxRun {
		run := ids[start:min(start+maxRun, len(ids))]
		n, err := exec(ctx, tx, update+" AND id IN (?"+strings.Repeat(",?", len(run)-1)+")", append(slices.Clone(args), run...)...)
		changed += n
		if err != nil {
			return changed, fmt.Errorf("%d rows: %w", len(run), err)
		}
	}
	return changed, nil
}

// exec runs one statement and returns the rows it changed.
func exec(ctx context.Context, tx *store.Tx, q string, args ...any) (int, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// recordLostRange stores the lost range (after, s.Seq] (LostRange), for
// the queries to say which windows are approximate. Its start time is
// the latest time the history holds at or below after (read before the
// rows of the salvage are written): the head's own record is past
// retention, so this is a bound at or before its time, derived from the
// stored rows only. The row's key is the range, so a second write of the
// same salvage changes nothing.
func recordLostRange(ctx context.Context, tx *store.Tx, term, after int64, s State) error {
	at := s.RecordedAt.UTC()
	var bounds [4]sql.NullTime
	// Each by an index, from the base's time down: recorded_at never
	// decreases along seq, so the first row at or below after is the
	// latest.
	err := tx.QueryRowContext(ctx, `SELECT
 (SELECT raised_at FROM alarm_history WHERE raised_seq <= ? ORDER BY raised_seq DESC LIMIT 1),
 (SELECT cleared_at FROM alarm_history WHERE cleared_at <= ? AND cleared_seq <= ? ORDER BY cleared_at DESC LIMIT 1),
 (SELECT recorded_at FROM alarm_severity_changes WHERE recorded_at <= ? AND seq <= ? ORDER BY recorded_at DESC LIMIT 1),
 (SELECT end_at FROM alarm_causal_links WHERE end_at <= ? AND end_seq <= ? ORDER BY end_at DESC LIMIT 1)`,
		after, at, after, at, after, at, after).Scan(&bounds[0], &bounds[1], &bounds[2], &bounds[3])
	if err != nil {
		return fmt.Errorf("read the time of the history's head (seq %d): %w", after, err)
	}
	var start sql.NullTime
	for _, b := range bounds {
		if b.Valid && (!start.Valid || b.Time.After(start.Time)) {
			start = b
		}
	}
	var startArg any
	if start.Valid {
		startArg = start.Time.UTC()
	}
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO alarm_history_lost_ranges (after_seq, seq, after_at, at, term) VALUES (?, ?, ?, ?, ?)",
		after, s.Seq, startArg, at, term); err != nil {
		return fmt.Errorf("record the lost range %d..%d: %w", after+1, s.Seq, err)
	}
	return nil
}
