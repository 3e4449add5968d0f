package history

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/store"
)

// Occurrence is one alarm occurrence as stored.
type Occurrence struct {
	ID             string    `json:"id"`
	AlarmKey       string    `json:"alarm_key"`
	VitrageID      int64     `json:"vitrage_id"`
	Type           string    `json:"type"`
	AlarmID        string    `json:"alarm_id"`
	Name           string    `json:"name"`
	Resource       Resource  `json:"resource"`
	Deduced        bool      `json:"deduced"`
	RaisedSeverity string    `json:"raised_severity"`
	Severity       string    `json:"severity"`
	RaisedSeq      int64     `json:"raised_seq"`
	RaisedAt       time.Time `json:"raised_at"`
	RaisedEventAt  time.Time `json:"raised_event_at,omitzero"`
	// ClearedSeq is 0 while the alarm is active.
	ClearedSeq     int64     `json:"cleared_seq,omitempty"`
	ClearedAt      time.Time `json:"cleared_at,omitzero"`
	ClearedEventAt time.Time `json:"cleared_event_at,omitzero"`
	// RaisedApprox says the alarm was raised in a range of the log that
	// was past retention when the history was written (a leader salvaged
	// the gap, see Batch.Reconcile): after the record RaisedAfterSeq and
	// at or before RaisedSeq. RaisedAt is then RaisedSeq's time, the
	// latest the raise can have been, RaisedSeverity the severity at
	// RaisedSeq, and RaisedEventAt unknown (zero).
	RaisedApprox   bool  `json:"raised_approx,omitempty"`
	RaisedAfterSeq int64 `json:"raised_after_seq,omitempty"`
	// ClearedApprox says likewise that the alarm cleared after the record
	// ClearedAfterSeq and at or before ClearedSeq, whose time ClearedAt is.
	ClearedApprox   bool             `json:"cleared_approx,omitempty"`
	ClearedAfterSeq int64            `json:"cleared_after_seq,omitempty"`
	SeverityChanges []SeverityChange `json:"severity_changes"`
}

// Active reports whether the occurrence has not cleared (as far as the
// history is written).
func (o Occurrence) Active() bool { return o.ClearedSeq == 0 }

// SeverityChange is one change of an active alarm's severity.
type SeverityChange struct {
	Seq        int64     `json:"seq"`
	RecordedAt time.Time `json:"recorded_at"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	// Approx says the change happened in a range of the log past
	// retention when the history was written: after the record AfterSeq
	// and at or before Seq, whose time RecordedAt is.
	Approx   bool  `json:"approx,omitempty"`
	AfterSeq int64 `json:"after_seq,omitempty"`
}

// Query selects occurrences active at some moment of [From, To].
type Query struct {
	From, To time.Time
	// Type, Resource and Severity filter when set: the alarm type; the
	// resource's external id, name or key; a severity (case insensitive)
	// the occurrence had at some moment of [From, To], whatever it has
	// now (Occurrence.Severity; its changes say when it had which).
	Type, Resource, Severity string
	// Limit is the page size (default 100, at most 10000).
	Limit int
	// After is the page token returned as Page.Next ("" for the first).
	After string
}

// Page is one page of occurrences, by raised seq then alarm key.
type Page struct {
	Items []Occurrence `json:"items"`
	// Next is the token of the next page ("" when this is the last).
	Next string `json:"next,omitempty"`
	// Coverage says whether the window is complete (read after the items).
	Coverage
}

// Coverage says how much of a window the history (and the event log it is
// written from) still holds, for the window's start From.
type Coverage struct {
	// CompleteFrom is the boundary retention last pruned the history
	// before (Prune; zero: never pruned): what ended before it may be
	// gone, so only a window starting at or after it is complete.
	CompleteFrom time.Time `json:"complete_from,omitzero"`
	// Incomplete says the window starts before CompleteFrom (or has no
	// start): the occurrences, links and severity changes that ended
	// before CompleteFrom are missing from the answer; those still active
	// then are not.
	Incomplete bool `json:"incomplete,omitempty"`
	// LogFrom is the recorded time of the oldest event the log retains
	// when its retention dropped older ones (zero: the log is whole).
	LogFrom time.Time `json:"log_from,omitzero"`
	// LogTruncated says the window starts before LogFrom (or has no
	// start): the log can no longer rebuild it (replay, --at); what the
	// history holds of it is all that is left.
	LogTruncated bool `json:"log_truncated,omitempty"`
	// Approx says the window overlaps a lost range (LostRanges): what
	// the history says of the moments inside one is approximate.
	Approx bool `json:"approx,omitempty"`
	// LostRanges are the lost ranges the window overlaps, by seq.
	LostRanges []LostRange `json:"lost_ranges,omitempty"`
}

// LostRange is a range of the log whose records were past retention when
// the history was written (a leader salvaged it, Batch.Reconcile): the
// records after AfterSeq through Seq. The history was made to agree with
// the state at Seq, so what it says of a moment inside the range is
// approximate: an alarm raised and cleared there is missing, one cleared
// there still shows active, and the rows opened, closed or changed by the
// salvage show Seq's time, the latest it can have been (RaisedApprox and
// the like).
type LostRange struct {
	AfterSeq int64 `json:"after_seq"`
	Seq      int64 `json:"seq"`
	// AfterAt is a time at or before that of the record AfterSeq, the
	// latest the history held at or below it (zero: unknown, the range
	// may reach back to the start of the history): the range's records
	// were recorded at or after it.
	AfterAt time.Time `json:"after_at,omitzero"`
	// At is the recorded time of the record Seq: the state of the
	// history at and after it is exact again.
	At time.Time `json:"at"`
}

// lostRangesIn returns the lost ranges that overlap the window [from, to]
// (zero: unbounded): those whose records can have been recorded at a
// moment of it before their base's time. At the base's time the state
// is the base's (and exact).
func lostRangesIn(ctx context.Context, db *sql.DB, from, to time.Time) ([]LostRange, error) {
	stmt := "SELECT after_seq, seq, after_at, at FROM alarm_history_lost_ranges WHERE 1=1"
	var args []any
	if !from.IsZero() {
		stmt, args = stmt+" AND at > ?", append(args, floorMicro(from))
	}
	if !to.IsZero() {
		stmt, args = stmt+" AND (after_at IS NULL OR after_at <= ?)", append(args, floorMicro(to))
	}
	rows, err := db.QueryContext(ctx, stmt+" ORDER BY seq, after_seq", args...)
	if err != nil {
		return nil, fmt.Errorf("read lost ranges: %w", err)
	}
	defer rows.Close()
	var out []LostRange
	for rows.Next() {
		var l LostRange
		var afterAt sql.NullTime
		if err := rows.Scan(&l.AfterSeq, &l.Seq, &afterAt, &l.At); err != nil {
			return nil, fmt.Errorf("read lost ranges: %w", err)
		}
		l.AfterAt, l.At = utc(afterAt), l.At.UTC()
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read lost ranges: %w", err)
	}
	return out, nil
}

// CoverageOf returns the coverage of the window [from, to] (zero times:
// unbounded). Read it after the rows it qualifies: Prune raises the
// boundary before it deletes, so a query that missed a deleted row sees
// it.
func CoverageOf(ctx context.Context, db *sql.DB, from, to time.Time) (Coverage, error) {
	var c Coverage
	lost, err := lostRangesIn(ctx, db, from, to)
	if err != nil {
		return c, err
	}
	c.LostRanges, c.Approx = lost, len(lost) > 0
	var before time.Time
	err = db.QueryRowContext(ctx, "SELECT pruned_before FROM alarm_history_pruned WHERE name = ?", headName).Scan(&before)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("read history retention boundary: %w", err)
	}
	if err == nil {
		c.CompleteFrom = before.UTC()
		c.Incomplete = from.IsZero() || floorMicro(from).Before(c.CompleteFrom)
	}
	seq, at, err := store.NewLog(db, nil).Oldest(ctx)
	if err != nil {
		return c, err
	}
	if seq > 1 {
		c.LogFrom = at
		c.LogTruncated = from.IsZero() || floorMicro(from).Before(at)
	}
	return c, nil
}

// ErrBadToken reports a page token that List did not make.
var ErrBadToken = errors.New("bad page token")

// ErrBadQuery wraps what List and Stats refuse in their query (a limit
// out of range, to before from, an interval too short or too many
// buckets): the asker's mistake, not the database's.
var ErrBadQuery = errors.New("bad history query")

// A page token names the last row of its page and the window it is of:
// "w/" from "/" to "/" seq "/" key, times in Unix microseconds ("" for no
// bound). The window is in it so that a next page is of the same one: a
// client that asked with a default window (the API's: the 24 hours before
// now) gets the rest of it, not that of a later now, which would skip what
// cleared in between. A token of the older form "seq/key" has no window.
type pageToken struct {
	seq      int64
	key      string
	from, to time.Time
	windowed bool
}

func microString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(floorMicro(t).UnixMicro(), 10)
}

func parseMicro(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMicro(n).UTC(), nil
}

func encodeToken(seq int64, key string, from, to time.Time) string {
	return base64.RawURLEncoding.EncodeToString([]byte("w/" + microString(from) + "/" + microString(to) + "/" + strconv.FormatInt(seq, 10) + "/" + key))
}

func decodeToken(tok string) (pageToken, error) {
	var p pageToken
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return p, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	rest := string(b)
	if w, ok := strings.CutPrefix(rest, "w/"); ok {
		f, r1, ok1 := strings.Cut(w, "/")
		t, r2, ok2 := strings.Cut(r1, "/")
		if !ok1 || !ok2 {
			return p, ErrBadToken
		}
		if p.from, err = parseMicro(f); err != nil {
			return p, ErrBadToken
		}
		if p.to, err = parseMicro(t); err != nil {
			return p, ErrBadToken
		}
		p.windowed, rest = true, r2
	}
	s, key, ok := strings.Cut(rest, "/")
	if !ok {
		return p, ErrBadToken
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil || seq < 0 {
		return p, ErrBadToken
	}
	p.seq, p.key = seq, key
	return p, nil
}

// PageWindow returns the window the page token tok was made for (zero
// times: unbounded), and false for a token that does not say (an older
// one): what a next page is asked with when its asker names no window.
func PageWindow(tok string) (from, to time.Time, ok bool, err error) {
	p, err := decodeToken(tok)
	if err != nil {
		return from, to, false, err
	}
	return p.from, p.to, p.windowed, nil
}

const occurrenceCols = `id, alarm_key, vitrage_id, alarm_type, alarm_id, name, resource_key, resource_type, resource_id, resource_name,
 deduced, raised_severity, severity, raised_seq, raised_at, raised_event_at, cleared_seq, cleared_at, cleared_event_at,
 raised_after_seq, cleared_after_seq`

// pageBounds checks a page's limit (0 is the default, 100) and window,
// returning the limit to use.
func pageBounds(limit int, from, to time.Time) (int, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 10000 {
		return 0, fmt.Errorf("%w: limit: %d is not in 1..10000", ErrBadQuery, limit)
	}
	if !to.IsZero() && to.Before(from) {
		return 0, fmt.Errorf("%w: to %s is before from %s", ErrBadQuery, to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return limit, nil
}

// List returns a page of the occurrences matching q, each with its
// severity changes.
func List(ctx context.Context, db *sql.DB, q Query) (Page, error) {
	var err error
	if q.Limit, err = pageBounds(q.Limit, q.From, q.To); err != nil {
		return Page{}, err
	}
	var where []string
	var args []any
	if q.Type != "" {
		where, args = append(where, "alarm_type = ?"), append(args, q.Type)
	}
	if q.Resource != "" {
		where, args = append(where, "(resource_id = ? OR resource_name = ? OR resource_key = ?)"), append(args, q.Resource, q.Resource, q.Resource)
	}
	if q.Severity != "" {
		w, a := severityDuring(q.Severity, q.From, q.To)
		where, args = append(where, w), append(args, a...)
	}
	if q.After != "" {
		tok, err := decodeToken(q.After)
		if err != nil {
			return Page{}, err
		}
		if strings.HasPrefix(tok.key, `"`) {
			// A links page token (an alarm key starts with its category).
			return Page{}, fmt.Errorf("%w: it is of a list of links", ErrBadToken)
		}
		if tok.windowed && (!tok.from.Equal(floorMicro(q.From)) || !tok.to.Equal(floorMicro(q.To))) {
			// Another window's next page skips or repeats rows.
			return Page{}, fmt.Errorf("%w: it is for the window from %s to %s, not from %s to %s", ErrBadToken,
				boundString(tok.from), boundString(tok.to), boundString(q.From), boundString(q.To))
		}
		where, args = append(where, "(raised_seq > ? OR (raised_seq = ? AND alarm_key > ?))"), append(args, tok.seq, tok.seq, tok.key)
	}
	stmt, args := activeDuring(q.From, q.To, where, args, q.Limit+1)
	rows, err := db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return Page{}, fmt.Errorf("list alarm history: %w", err)
	}
	defer rows.Close()
	var p Page
	for rows.Next() {
		o, err := scanOccurrence(rows)
		if err != nil {
			return Page{}, fmt.Errorf("list alarm history: %w", err)
		}
		p.Items = append(p.Items, o)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("list alarm history: %w", err)
	}
	rows.Close()
	if len(p.Items) > q.Limit {
		p.Items = p.Items[:q.Limit]
		last := p.Items[len(p.Items)-1]
		p.Next = encodeToken(last.RaisedSeq, last.AlarmKey, q.From, q.To)
	}
	if err := attachSeverityChanges(ctx, db, p.Items); err != nil {
		return Page{}, err
	}
	if p.Coverage, err = CoverageOf(ctx, db, q.From, q.To); err != nil {
		return Page{}, fmt.Errorf("list alarm history: %w", err)
	}
	return p, nil
}

// spanClasses bounds the span classes (alarm_history.span_class, see
// migration 16) given a range each: an occurrence of class k lasted less
// than 2^(k+1) seconds; from this class on, 2^(k+2) s (with the slack
// below) is beyond a time.Duration, and such occurrences (of a century
// and more) are read without a bound.
const spanClasses = 31

// activeDuring returns the statement of the occurrences active at some
// moment of [from, to] (zero: unbounded) that also meet the conditions
// where (with args), by raised seq then alarm key, at most limit, and its
// arguments.
//
// With a start, it is the union of three disjoint parts, each read by an
// index range of about the rows it returns, where one condition over the
// whole window was bounded by an index on one side only (half the table
// for a window in the middle of the history): those raised in the
// window (raised_at); those raised before it and still active
// (cleared_at IS NULL); those raised before it and cleared after its
// start, by span class (span_class, raised_at): one of class k, active at
// from, was raised after from minus its length, under 2^(k+1) seconds
// (given a second more and a factor of two, for the whole seconds it
// is computed from).
func activeDuring(from, to time.Time, where []string, args []any, limit int) (string, []any) {
	branch := func(cond string, condArgs []any) (string, []any) {
		w := append([]string{cond}, where...)
		return "(SELECT " + occurrenceCols + " FROM alarm_history WHERE " + strings.Join(w, " AND ") +
			" ORDER BY raised_seq, alarm_key LIMIT ?)", append(append(append([]any{}, condArgs...), args...), limit)
	}
	if from.IsZero() {
		cond, condArgs := "1=1", []any(nil)
		if !to.IsZero() {
			cond, condArgs = "raised_at <= ?", []any{floorMicro(to)}
		}
		stmt, a := branch(cond, condArgs)
		return strings.TrimSuffix(strings.TrimPrefix(stmt, "("), ")"), a
	}
	f := floorMicro(from)
	// The state at t holds the events recorded at t: an occurrence
	// cleared at from was not active then. (One raised after from was
	// cleared after it too: said all the same.)
	inWindow, inArgs := "raised_at > ? AND (cleared_at IS NULL OR cleared_at > ?)", []any{f, f}
	if !to.IsZero() {
		inWindow, inArgs = inWindow+" AND raised_at <= ?", append(inArgs, floorMicro(to))
	}
	var spans []string
	var spanArgs []any
	floor := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC) // DATETIME's
	for k := 0; k < spanClasses; k++ {
		lower := f.Add(-(time.Duration(1)<<(k+2) + 1) * time.Second)
		if lower.Before(floor) {
			spans, spanArgs = append(spans, "span_class = ?"), append(spanArgs, k)
			continue
		}
		spans, spanArgs = append(spans, "(span_class = ? AND raised_at > ?)"), append(spanArgs, k, lower)
	}
	spans, spanArgs = append(spans, "span_class >= ?"), append(spanArgs, spanClasses)
	a1, x1 := branch(inWindow, inArgs)
	a2, x2 := branch("cleared_at IS NULL AND raised_at <= ?", []any{f})
	a3, x3 := branch("cleared_at > ? AND raised_at <= ? AND ("+strings.Join(spans, " OR ")+")", append([]any{f, f}, spanArgs...))
	return "SELECT " + occurrenceCols + " FROM (" + a1 + " UNION ALL " + a2 + " UNION ALL " + a3 + ") u ORDER BY raised_seq, alarm_key LIMIT ?",
		append(append(append(x1, x2...), x3...), limit)
}

// boundString formats a window's bound for an error ("unbounded": zero).
func boundString(t time.Time) string {
	if t.IsZero() {
		return "unbounded"
	}
	return floorMicro(t).Format(time.RFC3339Nano)
}

// severityDuring is the condition on an alarm_history row that its
// occurrence had severity sev (case insensitive) at some moment of [from,
// to] (zero times: unbounded): the severity it was raised with, until its
// first change, or that of one of its changes (alarm_severity_changes
// within its seqs), until the next. At from, the severity is the one in
// force after every record recorded at from (the state at t holds the
// events recorded at t); after from, every severity the log gave counts,
// one set and changed again by records of one recorded time too, as List
// counts an occurrence raised and cleared by such records. The caller's
// other conditions keep the occurrence itself inside [from, to].
func severityDuring(sev string, from, to time.Time) (string, []any) {
	const within = "c.alarm_key = alarm_history.alarm_key AND c.seq > alarm_history.raised_seq AND (alarm_history.cleared_seq IS NULL OR c.seq < alarm_history.cleared_seq)"
	// Raised with sev, and not changed at or before from.
	raised := "UPPER(alarm_history.raised_severity) = UPPER(?)"
	args := []any{sev}
	if !from.IsZero() {
		raised += " AND NOT EXISTS (SELECT 1 FROM alarm_severity_changes c WHERE " + within + " AND c.recorded_at <= ?)"
		args = append(args, floorMicro(from))
	}
	// Changed to sev at or before to, and not changed again at or before
	// from.
	changed := "EXISTS (SELECT 1 FROM alarm_severity_changes c WHERE " + within + " AND UPPER(c.severity) = UPPER(?)"
	args = append(args, sev)
	if !to.IsZero() {
		changed += " AND c.recorded_at <= ?"
		args = append(args, floorMicro(to))
	}
	if !from.IsZero() {
		changed += " AND NOT EXISTS (SELECT 1 FROM alarm_severity_changes d WHERE d.alarm_key = c.alarm_key AND d.seq > c.seq" +
			" AND (alarm_history.cleared_seq IS NULL OR d.seq < alarm_history.cleared_seq) AND d.recorded_at <= ?)"
		args = append(args, floorMicro(from))
	}
	changed += ")"
	return "((" + raised + ") OR " + changed + ")", args
}

// ceilMicro is t in UTC rounded up to a whole microsecond, the precision
// of the history's times (DATETIME(6)): for a time c of the history, c >= t
// exactly when c >= ceilMicro(t), and c < t when c < ceilMicro(t).
func ceilMicro(t time.Time) time.Time {
	t = t.UTC()
	if f := t.Truncate(time.Microsecond); f.Before(t) {
		return f.Add(time.Microsecond)
	}
	return t
}

// floorMicro is t in UTC truncated to a whole microsecond: for a time c of
// the history, c <= t exactly when c <= floorMicro(t), and c > t when
// c > floorMicro(t). Sent so, a finer bound is not left to the server,
// which rounds it where sql_mode has TIME_ROUND_FRACTIONAL.
func floorMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utc(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// attachSeverityChanges fills each occurrence's severity changes: those of
// its alarm key within (raised_seq, cleared_seq).
func attachSeverityChanges(ctx context.Context, db *sql.DB, occ []Occurrence) error {
	if len(occ) == 0 {
		return nil
	}
	for i := range occ {
		occ[i].SeverityChanges = []SeverityChange{} // none is [] in JSON, not null
	}
	byKey := map[string][]int{}
	var keys []any
	// Only the changes between the page's first raise and its last clear
	// (or all since that raise when one of its occurrences is active):
	// not those of a flapping alarm's later occurrences.
	minSeq, maxSeq := occ[0].RaisedSeq, int64(0)
	active := false
	for i, o := range occ {
		if _, ok := byKey[o.AlarmKey]; !ok {
			keys = append(keys, o.AlarmKey)
		}
		byKey[o.AlarmKey] = append(byKey[o.AlarmKey], i)
		minSeq = min(minSeq, o.RaisedSeq)
		maxSeq = max(maxSeq, o.ClearedSeq)
		active = active || o.Active()
	}
	if active {
		maxSeq = math.MaxInt64
	}
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		args := append(append([]any{}, chunk...), minSeq, maxSeq)
		rows, err := db.QueryContext(ctx, "SELECT alarm_key, seq, recorded_at, prev_severity, severity, after_seq FROM alarm_severity_changes WHERE alarm_key IN (?"+
			strings.Repeat(",?", len(chunk)-1)+") AND seq > ? AND seq < ? ORDER BY seq", args...)
		if err != nil {
			return fmt.Errorf("list severity changes: %w", err)
		}
		for rows.Next() {
			var key string
			var c SeverityChange
			var after sql.NullInt64
			if err := rows.Scan(&key, &c.Seq, &c.RecordedAt, &c.From, &c.To, &after); err != nil {
				rows.Close()
				return fmt.Errorf("list severity changes: %w", err)
			}
			c.Approx, c.AfterSeq = after.Valid, after.Int64
			c.RecordedAt = c.RecordedAt.UTC()
			for _, i := range byKey[key] {
				o := &occ[i]
				if c.Seq > o.RaisedSeq && (o.ClearedSeq == 0 || c.Seq < o.ClearedSeq) {
					o.SeverityChanges = append(o.SeverityChanges, c)
				}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("list severity changes: %w", err)
		}
	}
	return nil
}

// Link is one period a `causes` link held.
type Link struct {
	From     string    `json:"from"`
	To       string    `json:"to"`
	StartSeq int64     `json:"start_seq"`
	StartAt  time.Time `json:"start_at"`
	EndSeq   int64     `json:"end_seq,omitempty"`
	EndAt    time.Time `json:"end_at,omitzero"`
	// StartApprox says the link started in a range of the log past
	// retention when the history was written: after the record
	// StartAfterSeq and at or before StartSeq, whose time StartAt is.
	StartApprox   bool  `json:"start_approx,omitempty"`
	StartAfterSeq int64 `json:"start_after_seq,omitempty"`
	// EndApprox says likewise that it ended after EndAfterSeq and at or
	// before EndSeq, whose time EndAt is.
	EndApprox   bool  `json:"end_approx,omitempty"`
	EndAfterSeq int64 `json:"end_after_seq,omitempty"`
}

// LinksQuery selects the periods of the links into or out of one alarm
// that overlap [From, To] (zero times: unbounded).
type LinksQuery struct {
	// Alarm is the alarm's key (as Occurrence.AlarmKey).
	Alarm    string
	From, To time.Time
	// Limit is the page size (default 100, at most 10000).
	Limit int
	// After is the page token returned as LinksPage.Next ("" for the
	// first); it is of one alarm and one window.
	After string
}

// LinksPage is one page of link periods, by start seq, then from and to
// key.
type LinksPage struct {
	Links []Link `json:"links"`
	// Next is the token of the next page ("" when this is the last).
	Next string `json:"next,omitempty"`
}

// A links page token is a page token (the window, the last row's start
// seq) whose key is the alarm's, the last row's from and to keys, each
// quoted (strconv.Quote): a token of another alarm is refused.
func linksTokenKey(alarm, from, to string) string {
	return strconv.Quote(alarm) + strconv.Quote(from) + strconv.Quote(to)
}

func parseLinksTokenKey(key string) (alarm, from, to string, err error) {
	var out [3]string
	for i := range out {
		q, err := strconv.QuotedPrefix(key)
		if err != nil {
			return "", "", "", ErrBadToken
		}
		if out[i], err = strconv.Unquote(q); err != nil {
			return "", "", "", ErrBadToken
		}
		key = key[len(q):]
	}
	if key != "" {
		return "", "", "", ErrBadToken
	}
	return out[0], out[1], out[2], nil
}

// Links returns a page of the periods of the links into or out of the
// alarm q.Alarm that overlap [q.From, q.To].
func Links(ctx context.Context, db *sql.DB, q LinksQuery) (LinksPage, error) {
	var err error
	if q.Limit, err = pageBounds(q.Limit, q.From, q.To); err != nil {
		return LinksPage{}, err
	}
	key := q.Alarm
	stmt := "SELECT from_key, to_key, start_seq, start_at, end_seq, end_at, start_after_seq, end_after_seq FROM alarm_causal_links WHERE (from_key = ? OR to_key = ?)"
	args := []any{key, key}
	if !q.To.IsZero() {
		stmt, args = stmt+" AND start_at <= ?", append(args, floorMicro(q.To))
	}
	if !q.From.IsZero() {
		stmt, args = stmt+" AND (end_at IS NULL OR end_at > ?)", append(args, floorMicro(q.From))
	}
	if q.After != "" {
		tok, err := decodeToken(q.After)
		if err != nil {
			return LinksPage{}, err
		}
		alarm, from, to, err := parseLinksTokenKey(tok.key)
		if err != nil {
			return LinksPage{}, err
		}
		if !tok.windowed || alarm != key {
			return LinksPage{}, fmt.Errorf("%w: it is not of the links of %s", ErrBadToken, key)
		}
		if !tok.from.Equal(floorMicro(q.From)) || !tok.to.Equal(floorMicro(q.To)) {
			return LinksPage{}, fmt.Errorf("%w: it is for the window from %s to %s, not from %s to %s", ErrBadToken,
				boundString(tok.from), boundString(tok.to), boundString(q.From), boundString(q.To))
		}
		stmt += " AND (start_seq > ? OR (start_seq = ? AND (from_key > ? OR (from_key = ? AND to_key > ?))))"
		args = append(args, tok.seq, tok.seq, from, from, to)
	}
	rows, err := db.QueryContext(ctx, stmt+" ORDER BY start_seq, from_key, to_key LIMIT ?", append(args, q.Limit+1)...)
	if err != nil {
		return LinksPage{}, fmt.Errorf("list causal links of %s: %w", key, err)
	}
	defer rows.Close()
	var p LinksPage
	for rows.Next() {
		var l Link
		var endSeq, startAfter, endAfter sql.NullInt64
		var endAt sql.NullTime
		if err := rows.Scan(&l.From, &l.To, &l.StartSeq, &l.StartAt, &endSeq, &endAt, &startAfter, &endAfter); err != nil {
			return LinksPage{}, fmt.Errorf("list causal links of %s: %w", key, err)
		}
		l.StartAt, l.EndSeq, l.EndAt = l.StartAt.UTC(), endSeq.Int64, utc(endAt)
		l.StartApprox, l.StartAfterSeq = startAfter.Valid, startAfter.Int64
		l.EndApprox, l.EndAfterSeq = endAfter.Valid, endAfter.Int64
		p.Links = append(p.Links, l)
	}
	if err := rows.Err(); err != nil {
		return LinksPage{}, fmt.Errorf("list causal links of %s: %w", key, err)
	}
	if len(p.Links) > q.Limit {
		p.Links = p.Links[:q.Limit]
		last := p.Links[len(p.Links)-1]
		p.Next = encodeToken(last.StartSeq, linksTokenKey(key, last.From, last.To), q.From, q.To)
	}
	return p, nil
}

// StatsQuery asks for counts of raised occurrences per interval.
type StatsQuery struct {
	From, To time.Time
	// Interval is the bucket width (from From), a whole number of
	// microseconds.
	Interval time.Duration
	// Type filters by alarm type when set.
	Type string
}

// Bucket counts the occurrences of one type and severity (the severity
// they were raised with) raised in [Start, End): End is Start+Interval,
// but for the last bucket of a window whose end cuts it short, where End
// is the window's end.
type Bucket struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Type     string    `json:"type"`
	Severity string    `json:"severity"`
	Raised   int64     `json:"raised"`
	// RaisedApprox counts those whose raise is known only to be at or
	// before a time in the bucket (Occurrence.RaisedApprox: opened when a
	// leader salvaged a lost range): they were raised in that range, which
	// may begin long before the bucket, so they are not in Raised.
	RaisedApprox int64 `json:"raised_approx,omitempty"`
}

// Stats counts the occurrences raised in [From, To) by interval, type and
// raised severity, ordered by bucket, type, severity. An occurrence raised
// in a lost range is counted apart (Bucket.RaisedApprox), in the bucket of
// its RaisedAt, the latest it can have been raised.
func Stats(ctx context.Context, db *sql.DB, q StatsQuery) ([]Bucket, error) {
	if q.Interval < time.Second {
		return nil, fmt.Errorf("%w: interval: %s is shorter than a second", ErrBadQuery, q.Interval)
	}
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, fmt.Errorf("%w: stats need from before to", ErrBadQuery)
	}
	if q.To.Sub(q.From)/q.Interval > 100000 {
		return nil, fmt.Errorf("%w: %s over %s intervals is more than 100000 buckets", ErrBadQuery, q.To.Sub(q.From), q.Interval)
	}
	if q.Interval%time.Microsecond != 0 {
		return nil, fmt.Errorf("%w: interval: %s is not a whole number of microseconds, the history's precision", ErrBadQuery, q.Interval)
	}
	// raised_at is a whole microsecond, so it is at or after a bound
	// exactly when it is at or after the bound rounded up to one: the
	// bounds are sent so, not left to the server, which truncates a finer
	// one (counting a raise just before from) or, with sql_mode
	// TIME_ROUND_FRACTIONAL, rounds it.
	from, to := ceilMicro(q.From), ceilMicro(q.To)
	width := q.Interval.Microseconds()
	stmt := "SELECT TIMESTAMPDIFF(MICROSECOND, ?, raised_at) DIV ? AS b, alarm_type, raised_severity," +
		" SUM(raised_after_seq IS NULL), SUM(raised_after_seq IS NOT NULL) FROM alarm_history " +
		"WHERE raised_at >= ? AND raised_at < ?"
	args := []any{from, width, from, to}
	if q.Type != "" {
		stmt, args = stmt+" AND alarm_type = ?", append(args, q.Type)
	}
	stmt += " GROUP BY b, alarm_type, raised_severity ORDER BY b, alarm_type, raised_severity"
	rows, err := db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("alarm stats: %w", err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		var b Bucket
		var idx int64
		if err := rows.Scan(&idx, &b.Type, &b.Severity, &b.Raised, &b.RaisedApprox); err != nil {
			return nil, fmt.Errorf("alarm stats: %w", err)
		}
		b.Start = q.From.UTC().Add(time.Duration(idx) * q.Interval)
		b.End = b.Start.Add(q.Interval)
		if b.End.After(q.To) {
			b.End = q.To.UTC()
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alarm stats: %w", err)
	}
	return out, nil
}

// At returns, for each alarm key, its newest occurrence raised at or before
// seq (a cleared one included): what the history says of the alarm as it
// was at seq. Keys without one are absent.
func At(ctx context.Context, db *sql.DB, keys []string, seq int64) (map[string]Occurrence, error) {
	out := map[string]Occurrence{}
	for _, key := range keys {
		p, err := listWhere(ctx, db, "alarm_key = ? AND raised_seq <= ? ORDER BY raised_seq DESC LIMIT 1", key, seq)
		if err != nil {
			return nil, err
		}
		if len(p) == 1 {
			o := p[0]
			if o.ClearedSeq > seq {
				// Cleared after seq: at seq it was active.
				o.ClearedSeq, o.ClearedAt, o.ClearedEventAt = 0, time.Time{}, time.Time{}
				o.ClearedApprox, o.ClearedAfterSeq = false, 0
			}
			out[key] = o
		}
	}
	return out, nil
}

func listWhere(ctx context.Context, db *sql.DB, where string, args ...any) ([]Occurrence, error) {
	rows, err := db.QueryContext(ctx, "SELECT "+occurrenceCols+" FROM alarm_history WHERE "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read alarm history: %w", err)
	}
	defer rows.Close()
	var out []Occurrence
	for rows.Next() {
		o, err := scanOccurrence(rows)
		if err != nil {
			return nil, fmt.Errorf("read alarm history: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alarm history: %w", err)
	}
	return out, nil
}

func scanOccurrence(rows *sql.Rows) (Occurrence, error) {
	var o Occurrence
	var raisedEv, clearedAt, clearedEv sql.NullTime
	var clearedSeq, raisedAfter, clearedAfter sql.NullInt64
	if err := rows.Scan(&o.ID, &o.AlarmKey, &o.VitrageID, &o.Type, &o.AlarmID, &o.Name,
		&o.Resource.Key, &o.Resource.Type, &o.Resource.ID, &o.Resource.Name,
		&o.Deduced, &o.RaisedSeverity, &o.Severity, &o.RaisedSeq, &o.RaisedAt, &raisedEv, &clearedSeq, &clearedAt, &clearedEv,
		&raisedAfter, &clearedAfter); err != nil {
		return Occurrence{}, err
	}
	o.RaisedAt = o.RaisedAt.UTC()
	o.RaisedEventAt, o.ClearedAt, o.ClearedEventAt = utc(raisedEv), utc(clearedAt), utc(clearedEv)
	o.ClearedSeq = clearedSeq.Int64
	o.RaisedApprox, o.RaisedAfterSeq = raisedAfter.Valid, raisedAfter.Int64
	o.ClearedApprox, o.ClearedAfterSeq = clearedAfter.Valid, clearedAfter.Int64
	return o, nil
}
