package history_test

import (
	"context"
	"database/sql"
	"fmt"
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

// TestFiltersUseAnIndex: asking for the alarms of one resource, or of one
// type, over a long window must not read every occurrence of the window
// (on a history of millions, a request that times out): the filters have
// indexes, and the query lets MariaDB use them.
func TestFiltersUseAnIndex(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	db.SetMaxOpenConns(1) // one session: its status counts List's reads
	const n, chunk = 20000, 1000
	for start := 0; start < n; start += chunk {
		var args []any
		for i := start; i < start+chunk; i++ {
			at := t0.Add(time.Duration(i) * time.Minute)
			typ, res := fmt.Sprint("t", i%50), fmt.Sprint("host-", i%1000)
			if i%5000 == 7 {
				typ, res = "rare", "needle"
			}
			args = append(args, fmt.Sprint("occ", i), "ALARM/"+typ+"/"+fmt.Sprint(i), typ, fmt.Sprint(i),
				"RESOURCE/host/"+res, res, res, int64(i+1), int64(i+1), at, int64(i+2), at.Add(30*time.Second))
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO alarm_history (id, alarm_key, vitrage_id, alarm_type, alarm_id, name,
 resource_key, resource_type, resource_id, resource_name, deduced, raised_severity, severity, severity_seq, raised_seq, raised_at,
 cleared_seq, cleared_at, term) VALUES `+strings.TrimSuffix(strings.Repeat("(?,?,1,?,?,'x',?,'host',?,?,0,'WARNING','WARNING',?,?,?,?,?,1),", chunk), ","), args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE TABLE alarm_history"); err != nil {
		t.Fatal(err)
	}
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
