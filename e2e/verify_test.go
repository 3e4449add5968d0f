//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/emit"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/snapshot"
)

// logCounts reads every event_id of the log: how many rows each has.
func logCounts(ctx context.Context, db *sql.DB) (map[string]int, int, error) {
	rows, err := db.QueryContext(ctx, "SELECT event_id, COUNT(*) FROM events GROUP BY event_id")
	if err != nil {
		return nil, 0, fmt.Errorf("read event ids: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	total := 0
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, 0, err
		}
		out[id] = n
		total += n
	}
	return out, total, rows.Err()
}

// logShape is what DESIGN.md invariant 2 says of the log as a whole:
// rows, distinct seqs, the lowest and highest seq, and the steps along
// seq where recorded_at goes back. The primary key is (seq, recorded_at),
// so a seq may be stored twice: rows == head alone does not show a dense
// log (a repeated seq can hide a missing one).
type logShape struct {
	rows, distinct, minSeq, maxSeq, backwards int64
}

func readLogShape(ctx context.Context, db *sql.DB) (logShape, error) {
	var s logShape
	var lo, hi sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM events").Scan(&s.rows, &s.distinct, &lo, &hi); err != nil {
		return s, fmt.Errorf("read the log's seqs: %w", err)
	}
	s.minSeq, s.maxSeq = lo.Int64, hi.Int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events a JOIN events b ON b.seq = a.seq + 1 WHERE b.recorded_at < a.recorded_at").Scan(&s.backwards); err != nil {
		return s, fmt.Errorf("read the log's recorded_at order: %w", err)
	}
	return s, nil
}

// reconstructed is a reconstruction's canonical dump and where it started.
type reconstructed struct {
	dump                 []byte
	snapshotSeq, skipped int64
}

// reconstruct is a fresh graph of the log prefix up to seq, built from the
// database alone (the newest snapshot at or before seq, then the events
// after it), as its canonical dump.
func reconstruct(ctx context.Context, db *sql.DB, seq int64) (reconstructed, error) {
	r, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: db, Events: store.NewLog(db, nil), Factory: snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return reconstructed{}, err
	}
	res, err := r.Reconstruct(ctx, snapshot.AtSeq(seq))
	if err != nil {
		return reconstructed{}, fmt.Errorf("reconstruct at seq %d: %w", seq, err)
	}
	var b bytes.Buffer
	if err := res.Machine.Dump(&b); err != nil {
		return reconstructed{}, err
	}
	return reconstructed{dump: b.Bytes(), snapshotSeq: res.SnapshotSeq, skipped: int64(res.Skipped)}, nil
}

// replay is the graph of the log prefix up to seq applied from scratch,
// with no snapshot, as its canonical dump: what DESIGN.md invariant 3 says
// every node's graph and every reconstruction must equal.
func replay(ctx context.Context, db *sql.DB, seq int64) ([]byte, error) {
	m, err := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
	if err != nil {
		return nil, err
	}
	for rec, err := range store.NewLog(db, nil).Scan(ctx, 0, seq) {
		if err != nil {
			return nil, fmt.Errorf("replay to seq %d: %w", seq, err)
		}
		_ = m.Apply(rec) // a record the evaluator refuses is refused alike everywhere
	}
	var b bytes.Buffer
	if err := m.Dump(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// expectedNotifications replays the whole log through the evaluator, the
// subscription registry and emit.Rows — the processor leader's call
// contract (notifier/emit) — and returns, per subscription, the webhook ids
// the subscriber must receive, in order, and the sha256 of each payload.
func expectedNotifications(ctx context.Context, db *sql.DB, head int64) (map[string][]string, map[string][32]byte, int, error) {
	eng := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
	reg := subscription.NewRegistry()
	out := map[string][]string{}
	sums := map[string][32]byte{}
	applyErrors := 0
	for rec, err := range store.NewLog(db, nil).Scan(ctx, 0, head) {
		if err != nil {
			return nil, nil, 0, err
		}
		res, err := eng.ApplyResult(rec)
		if err != nil {
			applyErrors++
		}
		_, _, _ = reg.Apply(rec)
		rows, err := emit.Rows(rec, res.Changes, eng.Graph(), reg)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("emit rows of seq %d: %w", rec.Seq, err)
		}
		for _, r := range rows {
			out[r.SubscriptionID] = append(out[r.SubscriptionID], r.WebhookID)
			sums[r.WebhookID] = sha256.Sum256(r.Payload)
		}
	}
	return out, sums, applyErrors, nil
}

// outboxState says whether the leader writes the outbox at all: its head,
// rows still pending, rows dead-lettered, and rows the notifier counted
// as delivered.
type outboxState struct {
	head                         int64
	subscriptions, pending, dead int64
	delivered                    int64
	wired                        bool
}

func readOutbox(ctx context.Context, db *sql.DB) (outboxState, error) {
	var s outboxState
	var err error
	if s.head, err = outboxHead(ctx, db); err != nil {
		return s, err
	}
	for _, q := range []struct {
		sql string
		dst *int64
	}{
		{"SELECT COUNT(*) FROM notifier_subscriptions", &s.subscriptions},
		{"SELECT COUNT(*) FROM notifier_outbox", &s.pending},
		{"SELECT COUNT(*) FROM notifier_dead_letters", &s.dead},
		{"SELECT COALESCE(SUM(delivered), 0) FROM notifier_cursors", &s.delivered},
	} {
		if err := db.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
			return s, fmt.Errorf("%s: %w", q.sql, err)
		}
	}
	s.wired = s.head > 0 || s.subscriptions > 0 || s.pending > 0 || s.dead > 0 || s.delivered > 0
	return s, nil
}

func outboxHead(ctx context.Context, db *sql.DB) (int64, error) {
	var head sql.NullInt64
	err := db.QueryRowContext(ctx, "SELECT MAX(seq) FROM notifier_outbox_head").Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("read outbox head: %w", err)
	}
	return head.Int64, nil
}

// orderCheck compares the ids a subscriber received (in order of first
// arrival) with the expected ones: lost are expected and never received,
// unexpected received and never expected, outOfOrder the expected ids
// that arrived before an id expected earlier.
func orderCheck(want, got []string) (lost, unexpected, outOfOrder int) {
	pos := make(map[string]int, len(got))
	for i, id := range got {
		pos[id] = i
	}
	wanted := make(map[string]bool, len(want))
	last := -1
	for _, id := range want {
		wanted[id] = true
		p, ok := pos[id]
		if !ok {
			lost++
			continue
		}
		if p < last {
			outOfOrder++
		} else {
			last = p
		}
	}
	for _, id := range got {
		if !wanted[id] {
			unexpected++
		}
	}
	return lost, unexpected, outOfOrder
}
