// Package outbox is the leader's side of webhook notifications: the rows
// the leader writes (one per subscriber and alarm transition, in log order)
// and Write, the fenced transaction that stores them together with the
// subscriptions in force. The notifier (package notifier) drains what this
// package writes; the tables are created by
// internal/store/migrations/0200_notifier.sql.
//
// Invariants kept here: a row's key (subscription, seq, ord) and its
// webhook id are derived from the log, so writing the same seq twice — a
// new leader after failover redoing what the old one wrote — stores nothing
// new (INSERT IGNORE); Write runs in one transaction that first calls
// store.CheckFence(FenceName, term), so a deposed leader's late write fails
// with store.ErrFenced and writes nothing; and the outbox head (the last
// seq written) only moves forward.
package outbox

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
	"github.com/causeway/causeway/notifier/subscription"
)

// FenceName is the fencing row of outbox writes.
const FenceName = "notifier.outbox"

// headName is the one row of notifier_outbox_head.
const headName = "outbox"

// Row is one notification to deliver.
type Row struct {
	SubscriptionID string
	// Seq is the log record whose application caused the transition; Ord
	// orders the subscriber's rows within that seq (0, 1, ...).
	Seq int64
	Ord int
	// WebhookID is the Standard Webhooks id (WebhookID), stable across
	// retries and failovers.
	WebhookID string
	// RecordedAt is the record's RecordedAt.
	RecordedAt time.Time
	// Payload is the request body, built by the leader at Seq.
	Payload []byte
}

// WebhookID derives a row's webhook id from the log: the subscriber, the
// seq, the alarm (its key in the graph) and the transition.
func WebhookID(subscriptionID string, seq int64, alarmKey, transition string) string {
	return "msg_" + event.DeriveID("notifier.v1", subscriptionID, strconv.FormatInt(seq, 10), alarmKey, transition)
}

// Batch is what the leader writes after applying the records up to Seq.
type Batch struct {
	// Seq is the last seq the batch covers (rows may stop earlier).
	Seq int64
	// Subscriptions are the subscription changes of the covered records.
	Subscriptions []subscription.Update
	// Resync, when set, replaces the stored subscriptions with the whole
	// set in force after a record, before Subscriptions are applied. A
	// leader writes it when the changes before that record are past
	// retention and cannot be rebuilt one by one.
	Resync *Resync
	// Rows in log order (Seq, then Ord).
	Rows []Row
}

// Resync is the whole set of subscriptions in force after the record Seq.
// What happened to a subscription before Seq is not in it: one deleted and
// added again before Seq keeps the stored deletion mark of its earlier
// life (if any), so rows of that earlier life still undelivered are sent
// to the new spec.
type Resync struct {
	Seq           int64
	Subscriptions []subscription.Entry
}

// Limits of one INSERT statement (below the default 16 MiB
// max_allowed_packet even after client-side escaping doubles blobs).
const (
	maxRowsPerInsert  = 500
	maxBytesPerInsert = 4 << 20
)

// Write stores b in one transaction fenced by term. Rows and subscription
// changes at or below the stored head are skipped, so calling Write again
// for seqs already written — after a failover, or a retry after an
// ambiguous commit error — is harmless. It returns the number of rows
// inserted. A deposed leader gets an error wrapping store.ErrFenced.
func Write(ctx context.Context, db *sql.DB, term int64, b Batch) (int, error) {
	tx, err := store.Begin(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("outbox write up to seq %d: begin: %w", b.Seq, err)
	}
	defer tx.Rollback(ctx)
	if err := store.CheckFence(ctx, tx, FenceName, term); err != nil {
		return 0, fmt.Errorf("outbox write up to seq %d: %w", b.Seq, err)
	}
	head, err := lockHead(ctx, tx)
	if err != nil {
		return 0, err
	}
	if b.Resync != nil && b.Resync.Seq > head {
		if err := resync(ctx, tx, term, *b.Resync); err != nil {
			return 0, err
		}
	}
	for _, u := range b.Subscriptions {
		if u.Seq <= head {
			continue
		}
		if err := putSubscription(ctx, tx, term, u); err != nil {
			return 0, err
		}
	}
	var rows []Row
	for _, r := range b.Rows {
		if r.Seq > head {
			rows = append(rows, r)
		}
	}
	n, err := insertRows(ctx, tx, term, rows)
	if err != nil {
		return 0, err
	}
	if b.Seq > head {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO notifier_outbox_head (name, seq, term, updated_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
			 ON DUPLICATE KEY UPDATE term = VALUES(term), updated_at = VALUES(updated_at), seq = GREATEST(seq, VALUES(seq))`,
			headName, b.Seq, term); err != nil {
			return 0, fmt.Errorf("outbox write: raise head to seq %d: %w", b.Seq, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("outbox write up to seq %d: commit: %w", b.Seq, err)
	}
	return n, nil
}

func lockHead(ctx context.Context, tx *store.Tx) (int64, error) {
	var head int64
	err := tx.QueryRowContext(ctx, "SELECT seq FROM notifier_outbox_head WHERE name = ? FOR UPDATE", headName).Scan(&head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("outbox write: read head: %w", err)
	}
	return head, nil
}

// resync puts every subscription of r at r.Seq and deletes, at r.Seq, the
// stored ones r lacks (their pending rows go to the dead-letter table, as
// for any deletion).
func resync(ctx context.Context, tx *store.Tx, term int64, r Resync) error {
	rows, err := tx.QueryContext(ctx, "SELECT id FROM notifier_subscriptions WHERE NOT deleted FOR UPDATE")
	if err != nil {
		return fmt.Errorf("outbox write: resync at seq %d: read subscriptions: %w", r.Seq, err)
	}
	var stored []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("outbox write: resync at seq %d: read subscriptions: %w", r.Seq, err)
		}
		stored = append(stored, id)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("outbox write: resync at seq %d: read subscriptions: %w", r.Seq, err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("outbox write: resync at seq %d: read subscriptions: %w", r.Seq, err)
	}
	keep := make(map[string]bool, len(r.Subscriptions))
	for _, e := range r.Subscriptions {
		keep[e.ID] = true
		if err := putSubscription(ctx, tx, term, subscription.Update{ID: e.ID, Seq: r.Seq, Spec: e.Spec}); err != nil {
			return err
		}
	}
	for _, id := range stored {
		if !keep[id] {
			if err := putSubscription(ctx, tx, term, subscription.Update{ID: id, Seq: r.Seq, Deleted: true}); err != nil {
				return err
			}
		}
	}
	return nil
}

func putSubscription(ctx context.Context, tx *store.Tx, term int64, u subscription.Update) error {
	var spec any
	if !u.Deleted {
		spec = []byte(u.Spec)
	}
	// MariaDB evaluates ON DUPLICATE KEY assignments left to right, so seq,
	// which the others compare against, is assigned last.
	var deletedSeq int64
	if u.Deleted {
		deletedSeq = u.Seq
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO notifier_subscriptions (id, seq, deleted, spec, term, updated_at, deleted_seq) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6), ?)
		 ON DUPLICATE KEY UPDATE
		   deleted_seq = IF(VALUES(seq) > seq, GREATEST(deleted_seq, VALUES(deleted_seq)), deleted_seq),
		   deleted = IF(VALUES(seq) > seq, VALUES(deleted), deleted),
		   spec = IF(VALUES(seq) > seq, VALUES(spec), spec),
		   term = IF(VALUES(seq) > seq, VALUES(term), term),
		   updated_at = IF(VALUES(seq) > seq, VALUES(updated_at), updated_at),
		   seq = GREATEST(seq, VALUES(seq))`,
		u.ID, u.Seq, u.Deleted, spec, term, deletedSeq); err != nil {
		return fmt.Errorf("outbox write: subscription %s at seq %d: %w", u.ID, u.Seq, err)
	}
	if !u.Deleted {
		if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO notifier_cursors (subscription_id, updated_at) VALUES (?, UTC_TIMESTAMP(6))", u.ID); err != nil {
			return fmt.Errorf("outbox write: cursor of subscription %s: %w", u.ID, err)
		}
	}
	return nil
}

func insertRows(ctx context.Context, tx *store.Tx, term int64, rows []Row) (int, error) {
	total := 0
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < maxRowsPerInsert && (n == 0 || size+len(rows[n].Payload) <= maxBytesPerInsert) {
			size += len(rows[n].Payload)
			n++
		}
		chunk := rows[:n]
		rows = rows[n:]
		var q strings.Builder
		q.WriteString("INSERT IGNORE INTO notifier_outbox (subscription_id, seq, ord, webhook_id, recorded_at, queued_at, term, payload) VALUES ")
		args := make([]any, 0, 7*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, UTC_TIMESTAMP(6), ?, ?)")
			args = append(args, r.SubscriptionID, r.Seq, r.Ord, r.WebhookID, r.RecordedAt.UTC(), term, r.Payload)
		}
		res, err := tx.ExecContext(ctx, q.String(), args...)
		if err != nil {
			return 0, fmt.Errorf("outbox write: insert %d rows from seq %d: %w", len(chunk), chunk[0].Seq, err)
		}
		if k, err := res.RowsAffected(); err == nil {
			total += int(k)
		}
	}
	return total, nil
}

// Head returns the last seq whose outbox rows are written (0 when none). A
// leader that has just won an election writes the rows of every record
// after Head.
func Head(ctx context.Context, db *sql.DB) (int64, error) {
	var head int64
	err := db.QueryRowContext(ctx, "SELECT seq FROM notifier_outbox_head WHERE name = ?", headName).Scan(&head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read outbox head: %w", err)
	}
	return head, nil
}
