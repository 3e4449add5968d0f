package history_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/history"
)

// rowsRead is the rows the session of db's one connection has read so far
// (Handler_read_*, every way a row is fetched: by index or by scan).
func rowsRead(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	rows, err := db.Query("SHOW SESSION STATUS LIKE 'Handler_read%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		n += v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// fillHistory inserts n occurrences into alarm_history, a thousand a
// statement, occurrence i with the placeholders of values (a row of the
// columns below) bound to row(i), and analyzes the table.
func fillHistory(t *testing.T, db *sql.DB, n int, values string, row func(i int) []any) {
	t.Helper()
	ctx := context.Background()
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		var args []any
		for i := start; i < min(start+chunk, n); i++ {
			args = append(args, row(i)...)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO alarm_history (id, alarm_key, vitrage_id, alarm_type, alarm_id, name,
 resource_key, resource_type, resource_id, resource_name, deduced, raised_severity, severity, severity_seq, raised_seq, raised_at,
 cleared_seq, cleared_at, term) VALUES `+strings.TrimSuffix(strings.Repeat(values+",", min(chunk, n-start)), ","), args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE TABLE alarm_history"); err != nil {
		t.Fatal(err)
	}
}

// TestFiltersUseAnIndex: asking for the alarms of one resource, or of one
// type, over a long window must not read every occurrence of the window
// (on a history of millions, a request that times out): the filters have
// indexes, and the query lets MariaDB use them.
func TestFiltersUseAnIndex(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	db.SetMaxOpenConns(1) // one session: its status counts List's reads
	const n = 20000
	fillHistory(t, db, n, "(?,?,1,?,?,'x',?,'host',?,?,0,'WARNING','WARNING',?,?,?,?,?,1)", func(i int) []any {
		at := t0.Add(time.Duration(i) * time.Minute)
		typ, res := fmt.Sprint("t", i%50), fmt.Sprint("host-", i%1000)
		if i%5000 == 7 {
			typ, res = "rare", "needle"
		}
		return []any{fmt.Sprint("occ", i), "ALARM/" + typ + "/" + fmt.Sprint(i), typ, fmt.Sprint(i),
			"RESOURCE/host/" + res, res, res, int64(i + 1), int64(i + 1), at, int64(i + 2), at.Add(30 * time.Second)}
	})
	window := history.Query{From: t0, To: t0.Add(n * time.Minute)}
	for _, q := range []history.Query{
		{Resource: "needle"}, {Resource: "RESOURCE/host/needle"}, {Type: "rare"},
	} {
		q.From, q.To = window.From, window.To
		before := rowsRead(t, db)
		p, err := history.List(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
		read := rowsRead(t, db) - before
		if len(p.Items) != n/5000 {
			t.Errorf("%+v: %d occurrences, want %d", q, len(p.Items), n/5000)
		}
		if read > 200 {
			t.Errorf("%+v: read %d rows for %d occurrences: the filter used no index", q, read, len(p.Items))
		}
	}
}

// TestMiddleWindowReadsItsRows: a short window in the middle of a long
// history must read about the rows active in it, not half the table (the
// occurrences raised before its end, or those cleared after its start,
// by one of the two time indexes) sorted by seq. Long occurrences that
// span the window, ended or active, are in it as well.
func TestMiddleWindowReadsItsRows(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	db.SetMaxOpenConns(1) // one session: its status counts List's reads
	const n = 20000
	fillHistory(t, db, n, "(?,?,1,'t',?,'x','','','','',0,'WARNING','WARNING',?,?,?,?,?,1)", func(i int) []any {
		at := t0.Add(time.Duration(i) * time.Minute)
		var cleared any = at.Add(30 * time.Second)
		var clearedSeq any = int64(i + 2)
		switch {
		case i%2000 == 3:
			// Lasts about three days (4320 minutes).
			cleared, clearedSeq = at.Add(3*24*time.Hour), int64(i+4322)
		case i%5000 == 11:
			cleared, clearedSeq = nil, nil // still active
		}
		return []any{fmt.Sprint("occ", i), fmt.Sprint("ALARM/t/", i), fmt.Sprint(i), int64(i + 1), int64(i + 1), at, clearedSeq, cleared}
	})
	from := t0.Add(10000*time.Minute + 10*time.Second)
	q := history.Query{From: from, To: from.Add(10 * time.Minute), Limit: 10000}
	// Raised in the window: 11 (the last at its end); spanning it: the
	// three-day ones raised in the 4320 minutes before (6003, 8003), the
	// active ones raised before it (11, 5011).
	var want []string
	for i := 0; i < n; i++ {
		switch {
		case i >= 10000 && i <= 10010, i == 6003, i == 8003, i == 11, i == 5011:
			want = append(want, fmt.Sprint("ALARM/t/", i))
		}
	}
	before := rowsRead(t, db)
	p, err := history.List(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	read := rowsRead(t, db) - before
	var got []string
	for _, o := range p.Items {
		got = append(got, o.AlarmKey)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("window %s..%s: %q; want %q", q.From, q.To, got, want)
	}
	t.Logf("read %d rows for %d occurrences", read, len(p.Items))
	if read > 1000 {
		t.Errorf("read %d rows for %d occurrences in a window of a history of %d", read, len(p.Items), n)
	}
}

// TestActiveDuringMatchesItsDefinition: the occurrences List returns for
// a window are those raised at or before its end and not cleared at or
// before its start, whatever their length (span classes, exact powers of
// two seconds, sub-second ones, ends on the window's bounds) and their
// page size.
func TestActiveDuringMatchesItsDefinition(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	type occ struct {
		key             string
		raised, cleared time.Time // cleared zero: active
	}
	var all []occ
	var args []any
	lengths := []time.Duration{0, time.Microsecond, 999 * time.Millisecond, time.Second, 2 * time.Second, 2*time.Second - 1, 8 * time.Second,
		8*time.Second + time.Microsecond, time.Hour, 1 << 20 * time.Second, 3 * 365 * 24 * time.Hour}
	const n = 600
	for i := 0; i < n; i++ {
		raised := t0.Add(time.Duration(i) * 7 * time.Second).Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
		o := occ{key: fmt.Sprintf("ALARM/t/%04d", i), raised: raised}
		var clearedAt, clearedSeq any
		if i%13 != 5 {
			d := lengths[rng.IntN(len(lengths))]
			if rng.IntN(3) == 0 {
				d = time.Duration(rng.Int64N(int64(48 * time.Hour)))
			}
			o.cleared = raised.Add(d).Truncate(time.Microsecond)
			clearedAt, clearedSeq = o.cleared, int64(i+1+n)
		}
		all = append(all, o)
		args = append(args, fmt.Sprint("occ", i), o.key, fmt.Sprint(i), int64(i+1), int64(i+1), o.raised, clearedSeq, clearedAt)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO alarm_history (id, alarm_key, vitrage_id, alarm_type, alarm_id, name,
 resource_key, resource_type, resource_id, resource_name, deduced, raised_severity, severity, severity_seq, raised_seq, raised_at,
 cleared_seq, cleared_at, term) VALUES `+strings.TrimSuffix(strings.Repeat("(?,?,1,'t',?,'x','','','','',0,'WARNING','WARNING',?,?,?,?,?,1),", n), ","), args...); err != nil {
		t.Fatal(err)
	}
	for w := 0; w < 40; w++ {
		var from, to time.Time
		if w > 0 {
			a := all[rng.IntN(n)]
			from = a.raised
			if rng.IntN(2) == 0 && !a.cleared.IsZero() {
				from = a.cleared
			}
			to = from.Add(time.Duration(rng.IntN(3)) * time.Duration(rng.Int64N(int64(2*time.Hour))))
		}
		var want []string
		for _, o := range all {
			if (to.IsZero() || !o.raised.After(to)) && (from.IsZero() || o.cleared.IsZero() || o.cleared.After(from)) {
				want = append(want, o.key)
			}
		}
		var got []string
		q := history.Query{From: from, To: to, Limit: 7}
		for {
			p, err := history.List(ctx, db, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range p.Items {
				got = append(got, o.AlarmKey)
			}
			if q.After = p.Next; q.After == "" {
				break
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("window %s..%s: %d occurrences %q; want %d %q", from, to, len(got), got, len(want), want)
		}
	}
}

// TestActiveDuringRandomHistories: List over random histories and windows
// returns each occurrence active at some moment of the window exactly once,
// by raised seq then alarm key, across pages of any size: several alarms
// raised by one record (one seq, one time), an alarm raised again, rows
// cleared before their raise (a salvage's times), spans of every class
// (up to beyond the last bounded one), windows with sub-microsecond
// bounds, point windows, open starts and ends, and a type filter.
func TestActiveDuringRandomHistories(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	for round := 0; round < 4; round++ {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		if _, err := db.ExecContext(ctx, "DELETE FROM alarm_history"); err != nil {
			t.Fatal(err)
		}
		type occ struct {
			key, typ        string
			seq             int64
			raised, cleared time.Time // cleared zero: active
		}
		var all []occ
		var args []any
		const n = 300
		seq, at := int64(1), t0
		for i := 0; i < n; i++ {
			if rng.IntN(3) > 0 { // else raised by the same record as the previous one
				seq += 1 + int64(rng.IntN(3))
				at = at.Add(time.Duration(rng.Int64N(int64(20 * time.Second)))).Truncate(time.Microsecond)
			}
			o := occ{key: fmt.Sprintf("ALARM/t/%03d", rng.IntN(n)), typ: []string{"t", "u"}[rng.IntN(2)], seq: seq, raised: at}
			for _, p := range all {
				if p.seq == o.seq && p.key == o.key {
					o.key += "x"
				}
			}
			var clearedAt, clearedSeq any
			if rng.IntN(8) > 0 {
				var d time.Duration
				switch rng.IntN(6) {
				case 0:
					d = -time.Duration(rng.Int64N(int64(3 * time.Second)))
				case 1:
					k := rng.IntN(34)
					d = time.Duration(1)<<k*time.Second + time.Duration(rng.IntN(3)-1)*time.Microsecond
				case 2:
					d = time.Duration(rng.Int64N(int64(time.Minute)))
				default:
					d = time.Duration(rng.Int64N(int64(2 * time.Hour)))
				}
				o.cleared = o.raised.Add(d).Truncate(time.Microsecond)
				clearedAt, clearedSeq = o.cleared, seq+1+int64(rng.IntN(1000))
			}
			all = append(all, o)
			args = append(args, fmt.Sprint("occ", i), o.key, o.typ, fmt.Sprint(i), o.seq, o.seq, o.raised, clearedSeq, clearedAt)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO alarm_history (id, alarm_key, vitrage_id, alarm_type, alarm_id, name,
 resource_key, resource_type, resource_id, resource_name, deduced, raised_severity, severity, severity_seq, raised_seq, raised_at,
 cleared_seq, cleared_at, term) VALUES `+strings.TrimSuffix(strings.Repeat("(?,?,1,?,?,'x','','','','',0,'WARNING','WARNING',?,?,?,?,?,1),", n), ","), args...); err != nil {
			t.Fatal(err)
		}
		// What List orders by: raised seq, then alarm key.
		slices.SortFunc(all, func(a, b occ) int {
			if c := cmp.Compare(a.seq, b.seq); c != 0 {
				return c
			}
			return strings.Compare(a.key, b.key)
		})
		moment := func() time.Time {
			o := all[rng.IntN(n)]
			m := o.raised
			if rng.IntN(2) == 0 && !o.cleared.IsZero() {
				m = o.cleared
			}
			return m.Add(time.Duration(rng.IntN(5)-2) * time.Duration(rng.Int64N(int64(2*time.Second))))
		}
		for w := 0; w < 60; w++ {
			var from, to time.Time
			switch rng.IntN(6) {
			case 0:
				to = moment()
			case 1:
				from = moment()
			case 2:
				from = moment()
				to = from
			default:
				from = moment()
				to = from.Add(time.Duration(rng.Int64N(int64(10 * time.Minute))))
			}
			typ := []string{"", "", "t"}[rng.IntN(3)]
			f, e := from.Truncate(time.Microsecond), to.Truncate(time.Microsecond)
			var want []string
			for _, o := range all {
				if (to.IsZero() || !o.raised.After(e)) && (from.IsZero() || o.cleared.IsZero() || o.cleared.After(f)) && (typ == "" || o.typ == typ) {
					want = append(want, fmt.Sprint(o.seq, o.key))
				}
			}
			var got []string
			q := history.Query{From: from, To: to, Type: typ, Limit: 1 + rng.IntN(6)}
			for {
				p, err := history.List(ctx, db, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range p.Items {
					got = append(got, fmt.Sprint(o.RaisedSeq, o.AlarmKey))
				}
				if q.After = p.Next; q.After == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("round %d, window %s..%s type %q limit %d: %d occurrences %q; want %d %q", round, from, to, typ, q.Limit, len(got), got, len(want), want)
			}
		}
	}
}
