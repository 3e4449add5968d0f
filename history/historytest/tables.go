package historytest

import (
	"database/sql"
	"strings"
	"testing"
)

// Tables select every row of the history's tables, with the columns that
// do not depend on who wrote them or when (not the term), in a fixed order.
var Tables = []string{
	"SELECT id, alarm_key, vitrage_id, alarm_type, alarm_id, name, resource_key, resource_type, resource_id, resource_name, " +
		"deduced, raised_severity, severity, severity_seq, raised_seq, raised_at, raised_event_at, raised_after_seq, " +
		"cleared_seq, cleared_at, cleared_event_at, cleared_after_seq FROM alarm_history ORDER BY id",
	"SELECT id, alarm_key, seq, recorded_at, prev_severity, severity, after_seq FROM alarm_severity_changes ORDER BY id",
	"SELECT id, from_key, to_key, start_seq, start_at, start_after_seq, end_seq, end_at, end_after_seq FROM alarm_causal_links ORDER BY id",
}

// Rows returns the rows of query q, each as "column=value|..." (NULL for
// a NULL), in the query's order.
func Rows(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			val := v.String
			if !v.Valid {
				val = "NULL"
			}
			b.WriteString(cols[i] + "=" + val + "|")
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
