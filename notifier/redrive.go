package notifier

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/clip"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/notifier/webhook"
)

// DeadLetter is a row in the dead-letter table.
type DeadLetter struct {
	ID             int64     `json:"id"`
	SubscriptionID string    `json:"subscription_id"`
	Seq            int64     `json:"seq"`
	Ord            int       `json:"ord"`
	WebhookID      string    `json:"webhook_id"`
	QueuedAt       time.Time `json:"queued_at"`
	DeadAt         time.Time `json:"dead_at"`
	Reason         string    `json:"reason"`
}

// DeadLetters lists dead letters (subscription "" for all), oldest first.
func DeadLetters(ctx context.Context, sqldb *sql.DB, subscriptionID string, limit int) ([]DeadLetter, error) {
	q := "SELECT id, subscription_id, seq, ord, webhook_id, queued_at, dead_at, reason FROM notifier_dead_letters"
	args := []any{}
	if subscriptionID != "" {
		q += " WHERE subscription_id = ?"
		args = append(args, subscriptionID)
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := sqldb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		if err := rows.Scan(&d.ID, &d.SubscriptionID, &d.Seq, &d.Ord, &d.WebhookID, &d.QueuedAt, &d.DeadAt, &d.Reason); err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// RedriveResult counts what Redrive did. Orphaned are letters of a
// subscription that no longer exists: deleted, or deleted and added again
// (letters up to its deletion are the deleted one's, never sent to the new
// one). They stay until PurgeDeadLetters removes them. Errors holds, per
// subscription that failed, the error that made Redrive skip it (the
// receiver's answer, or why it could not be reached), so that whoever
// runs it learns why its letters stay, not only how many.
type RedriveResult struct {
	Sent, Failed, Orphaned int
	Errors                 map[string]string
}

// Redrive sends the dead letters of subscriptionID ("" for all), oldest
// first, to their subscription's current URL with their original
// webhook-id, deleting each once delivered. A subscriber that fails is
// skipped for the rest of the run (its letters stay). Letters of deleted
// subscriptions are not sent and stay too (Orphaned). One redrive runs at a time on a
// database: another one fails at once with an error wrapping
// store.ErrLockHeld, rather than send the same letters again.
func Redrive(ctx context.Context, sqldb *sql.DB, cfg Config, client *http.Client, subscriptionID string) (RedriveResult, error) {
	cfg.SetDefaults()
	secrets, err := cfg.ResolveSecrets()
	if err != nil {
		return RedriveResult{}, err
	}
	lease, err := store.Lock(ctx, sqldb, "notifier.redrive", 0)
	if errors.Is(err, store.ErrLockHeld) {
		return RedriveResult{}, fmt.Errorf("redrive: another redrive is running on this database: %w", err)
	}
	if err != nil {
		return RedriveResult{}, fmt.Errorf("redrive: %w", err)
	}
	defer lease.Release()
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	sender := &webhook.Sender{Client: client, UserAgent: cfg.UserAgent}
	d := &db{sql: sqldb}
	var res RedriveResult
	failed := map[string]bool{}
	var after int64
	for {
		// The lock goes with its connection: should that drop, another
		// redrive could start, so stop rather than send beside it.
		if err := lease.Held(ctx); err != nil {
			return res, fmt.Errorf("redrive: %w", err)
		}
		q := "SELECT id, subscription_id, seq, webhook_id, payload FROM notifier_dead_letters WHERE id > ?"
		args := []any{after}
		if subscriptionID != "" {
			q += " AND subscription_id = ?"
			args = append(args, subscriptionID)
		}
		rows, err := sqldb.QueryContext(ctx, q+" ORDER BY id LIMIT 100", args...)
		if err != nil {
			return res, fmt.Errorf("read dead letters: %w", err)
		}
		type letter struct {
			id, seq   int64
			sub, whid string
			payload   []byte
		}
		var batch []letter
		for rows.Next() {
			var l letter
			if err := rows.Scan(&l.id, &l.sub, &l.seq, &l.whid, &l.payload); err != nil {
				rows.Close()
				return res, fmt.Errorf("read dead letters: %w", err)
			}
			batch = append(batch, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("read dead letters: %w", err)
		}
		if len(batch) == 0 {
			return res, nil
		}
		for _, l := range batch {
			after = l.id
			if failed[l.sub] {
				res.Failed++
				continue
			}
			s, ok, err := d.subscription(ctx, l.sub)
			if err != nil {
				return res, err
			}
			if !ok || s.deleted || formerLetter(s, l.seq) {
				res.Orphaned++
				continue
			}
			spec, err := subscription.Decode(s.spec)
			if err != nil {
				return res, fmt.Errorf("stored spec of %s: %w", l.sub, err)
			}
			secret, has := secrets[spec.SecretRef]
			if spec.SecretRef != "" && !has {
				return res, fmt.Errorf("subscription %s: secret_ref %q is not in notifier.secrets", l.sub, spec.SecretRef)
			}
			pol := cfg.policyFor(spec)
			if err := sender.Send(ctx, webhook.Request{URL: spec.URL, ID: l.whid, Body: l.payload, Headers: spec.Headers, Secret: secret, Timeout: pol.timeout}); err != nil {
				failed[l.sub] = true
				res.Failed++
				if res.Errors == nil {
					res.Errors = map[string]string{}
				}
				res.Errors[l.sub] = clip.String(err.Error(), 1024)
				continue
			}
			if _, err := sqldb.ExecContext(ctx, "DELETE FROM notifier_dead_letters WHERE id = ?", l.id); err != nil {
				return res, fmt.Errorf("delete redriven dead letter %d: %w", l.id, err)
			}
			res.Sent++
		}
	}
}

// formerLetter says a letter of seq belongs to an earlier subscription of
// s's id, deleted at s.deletedSeq before s was added again (0: no
// deletion known).
func formerLetter(s subRow, seq int64) bool {
	return s.deletedSeq > 0 && seq <= s.deletedSeq
}

// PurgeDeadLetters deletes dead letters for good: those of subscriptionID
// ("" for every subscription's) when orphanedOnly is false, else only
// those Redrive would not send because their subscription is gone
// (deleted, or deleted and added again since). It returns how many it
// deleted.
func PurgeDeadLetters(ctx context.Context, sqldb *sql.DB, subscriptionID string, orphanedOnly bool) (int64, error) {
	q := "DELETE dl FROM notifier_dead_letters dl"
	var where []string
	var args []any
	if orphanedOnly {
		q += " LEFT JOIN notifier_subscriptions s ON s.id = dl.subscription_id"
		where = append(where, "(s.id IS NULL OR s.deleted OR (s.deleted_seq > 0 AND dl.seq <= s.deleted_seq))")
	}
	if subscriptionID != "" {
		where = append(where, "dl.subscription_id = ?")
		args = append(args, subscriptionID)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	res, err := sqldb.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return n, nil
}

func specOf(raw []byte) subscription.Spec {
	if len(raw) == 0 {
		return subscription.Spec{}
	}
	s, _ := subscription.Decode(raw)
	return s
}
