package persister

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestEventsTheDatabaseRefusesAreDeadLettered runs a persister on a real
// MariaDB database whose events.event_id was narrowed to latin1 (a
// schema as an operator may have altered it: the migrated one is
// utf8mb4, and the decoder refuses what it cannot hold). An event id
// latin1 cannot hold makes the dedup lookup fail on every try, with
// 1267 (the id alone), 1270 (with one more) or 1271 (with two more),
// illegal mix of collations; and a replayed record whose recorded_at
// header is in year 10000 in UTC makes the driver refuse the statement
// before it is sent, on every try. Each must be dead-lettered (reason
// rejected, or invalid for the header), and the other events of its
// batch stored: retried, they stopped the log for good.
func TestEventsTheDatabaseRefusesAreDeadLettered(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, "ALTER TABLE events MODIFY event_id VARCHAR(255) CHARACTER SET latin1 NOT NULL"); err != nil {
		t.Fatal(err)
	}
	j := &journal{}
	q := newFakeQueue(j)
	p, err := New(Config{BatchSize: 3, BatchWait: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, KeepRecordedAt: true},
		Deps{Queue: q, Log: store.NewLog(db, nil), Sequencer: &fakeSequencer{j: j}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})

	// Each wave is one batch; the next is pushed once the last is settled.
	waves := []struct {
		ids  []string
		at   string // the recorded_at header of the last one
		want []string
	}{
		{[]string{"x1-😀"}, "", []string{"dead-letter 1 rejected"}},
		{[]string{"a2", "x2-😀"}, "", []string{"ack 2 multiple=true", "dead-letter 3 rejected"}},
		{[]string{"a3", "x3-😀", "c3"}, "", []string{"ack 4 multiple=true", "dead-letter 5 rejected", "ack 6 multiple=true"}},
		{[]string{"a4", "y4"}, "9999-12-31T23:59:59-01:00", []string{"dead-letter 8 invalid", "ack 7 multiple=true"}},
	}
	for _, w := range waves {
		for i, id := range w.ids {
			q.next++
			m := &fakeMsg{tag: q.next, body: body(t, id), j: j}
			if i == len(w.ids)-1 {
				m.at = w.at
			}
			q.in <- m
		}
		deadline := time.Now().Add(30 * time.Second)
		for !containsAll(j.get(), w.want) {
			if time.Now().After(deadline) {
				t.Fatalf("wave %v not settled in 30s: journal %v; want %v in it", w.ids, j.get(), w.want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var ids []string
	rows, err := db.QueryContext(ctx, "SELECT event_id FROM events ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a2", "a3", "c3", "a4"}; !slices.Equal(ids, want) {
		t.Errorf("stored %v; want %v", ids, want)
	}
	if got := counterValue(t, p.m.deadLettered.WithLabelValues(ReasonRejected)); got != 3 {
		t.Errorf("dead_lettered_total{reason=rejected} = %v; want 3", got)
	}
}

// containsAll reports whether every line of want is in got.
func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// TestRejectedByErrorNumber checks the classification of the database's
// errors: those a value of the rows causes are refusals (dead-lettered
// once alone), the rest are retried. Most refusals cannot be caused on a
// migrated schema (1300, an invalid utf8mb4 string, needs bytes the
// decoder refuses), so each number is checked here.
func TestRejectedByErrorNumber(t *testing.T) {
	for _, n := range []uint16{1048, 1118, 1153, 1263, 1264, 1265, 1267, 1270, 1271, 1292, 1300, 1366, 1367, 1406, 1525, 1690, 4025} {
		err := fmt.Errorf("append 3 events: %w", &mysql.MySQLError{Number: n, Message: "refused"})
		if !rejected(err) {
			t.Errorf("error %d is not a refusal of the data; want it dead-lettered once alone", n)
		}
	}
	for _, err := range []error{
		&mysql.MySQLError{Number: 1040, Message: "too many connections"},
		&mysql.MySQLError{Number: 1053, Message: "server shutdown"},
		&mysql.MySQLError{Number: 1205, Message: "lock wait timeout"},
		&mysql.MySQLError{Number: 1213, Message: "deadlock"},
		&mysql.MySQLError{Number: 1290, Message: "read-only"},
		&mysql.MySQLError{Number: 1021, Message: "disk full"},
		&mysql.MySQLError{Number: 1114, Message: "table is full"},
		&mysql.MySQLError{Number: 1146, Message: "table doesn't exist"},
		&mysql.MySQLError{Number: 1054, Message: "unknown column"},
		&mysql.MySQLError{Number: 1364, Message: "field doesn't have a default value"},
		&mysql.MySQLError{Number: 1526, Message: "table has no partition for value"},
		&mysql.MySQLError{Number: 1142, Message: "INSERT command denied"},
		&mysql.MySQLError{Number: 1062, Message: "duplicate entry for key PRIMARY"},
		&mysql.MySQLError{Number: 1644, Message: "signalled by a trigger"},
		&mysql.MySQLError{Number: 9999, Message: "unknown"},
		driver.ErrBadConn,
		context.DeadlineExceeded,
		errors.New("year is not in the range [1, 9999]: 10000"),
	} {
		if rejected(fmt.Errorf("append: %w", err)) {
			t.Errorf("%v taken for a refusal of the data; want it retried", err)
		}
	}
	if !rejected(fmt.Errorf("append: %w", mysql.ErrPktTooLarge)) {
		t.Error("the driver's packet too large is not a refusal of the data")
	}
}
