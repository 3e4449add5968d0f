// Package notifier is the `causeway notifier` service: it drains the outbox
// the leader writes (package outbox) to each subscriber's webhook, strictly
// in order, at least once, and never drops a row silently (invariant 5 of
// DESIGN.md).
//
// Per subscriber, a cursor row holds the next row to deliver; rows behind
// it are deleted with each cursor move, so nothing is updated per row.
// Several instances may run: a subscriber is drained by the instance that
// holds its lease (lease_owner/lease_expires on the cursor row, in the
// database's clock, renewed every LeaseTTL/3 and checked in the same
// transaction as every cursor move); an instance that dies loses its leases
// after LeaseTTL and another takes over from the stored cursor. A delivery
// whose cursor move was not committed is sent again — with the same
// webhook-id, which receivers dedup on.
//
// A failing subscriber is retried with capped exponential backoff and
// jitter, on its own goroutine, so it blocks only itself; a success drains
// what is pending at once. A row older than its max age is moved to the
// dead-letter table (with the reason) and the subscriber moves on; so are,
// under backlog_policy dead_letter, the oldest rows beyond max_backlog, and
// the pending rows of a deleted subscription. `causeway webhooks redrive`
// sends dead letters again. A backlog over max_backlog is logged, exported
// (causeway_notifier_backlog_over_limit) and shown by `webhooks status`.
//
// The pieces, from the log to the receiver:
//
//   - notifier/subscription: the Spec carried by subscription.put events,
//     its strict decoder, filters, and the Registry the processor applies
//     events to (part of the processor's deterministic state);
//   - notifier/emit: alarm transitions from the graph's changes, matching,
//     payloads; its package comment is the processor's call contract;
//   - notifier/outbox: the leader's fenced, idempotent Write of rows and
//     subscriptions, and Head, where a new leader resumes;
//   - notifier/webhook: Standard Webhooks signing and one HTTP attempt;
//   - this package: the delivery service, Statuses, DeadLetters, Redrive.
//
// Secrets are not in the log: a spec's secret_ref names an entry of
// Config.Secrets (inline whsec_ value or a file). A reference the config
// lacks makes delivery fail loudly and retry (the rows are kept), so a
// secret added later is picked up by a restart without losing anything.
package notifier

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/liveness"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/notifier/webhook"
)

// Deps are the notifier's collaborators.
type Deps struct {
	DB         *sql.DB
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Client sends the requests (default: a client with no overall timeout;
	// each attempt is bounded by the policy's timeout).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
}

// Notifier is one notifier instance.
type Notifier struct {
	cfg     Config
	db      *db
	log     *slog.Logger
	m       *metrics
	sender  *webhook.Sender
	secrets map[string]webhook.Secret
	now     func() time.Time
	jitter  func() float64
	// ops holds the statements and transactions in flight (db.bound) and
	// the deliveries: Alive's measure, against stallLimit.
	ops        liveness.Ops
	stallLimit time.Duration
	// series counts, for each subscriber this instance has drained, the
	// scans since it was last live or drained here; owned by Run.
	series map[string]int
}

// forgetScans is how many scans a subscription is gone (deleted, or
// absent, and drained by no worker here) before its series are removed:
// a minute with the default scan_interval, so that a scrape sees their
// last counts (the rows dead-lettered on its deletion among them).
const forgetScans = 30

// Alive reports whether the notifier is not stuck: no statement or
// transaction of its has been in flight for longer than the stall limit,
// and no delivery either. The limit is liveness.Limit of query_timeout,
// which bounds every statement and transaction, and of the longest
// delivery timeout (half lease_ttl): two minutes with the defaults. So
// only an operation its own timeout failed to end, several times over,
// trips it. A database that is down or hung is no such thing: its
// statements fail at once or at query_timeout, the worker draining a
// subscriber stops, and the next scan tries again; a receiver that is
// down is retried with backoff. Neither is being stuck, and a restart
// would help neither: systemd's watchdog does not restart the notifier
// during an outage.
func (n *Notifier) Alive() bool { return !n.ops.Stuck(n.stallLimit) }

// leaseOwner is the name of this process in leases: the instance id and
// a random part, so that two processes given one instance_id (a config
// copied to two hosts, two containers at pid 1 of one hostname) never
// both hold a subscriber's lease.
func leaseOwner(instance string) string {
	var r [6]byte
	_, _ = crand.Read(r[:]) // crypto/rand.Read does not fail (Go 1.24+)
	return instance + "/" + hex.EncodeToString(r[:])
}

// New validates cfg and prepares an instance; it starts nothing.
func New(cfg Config, deps Deps) (*Notifier, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("notifier: a database is required")
	}
	secrets, err := cfg.ResolveSecrets()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	n := &Notifier{
		cfg: cfg, m: m, secrets: secrets, log: deps.Logger, now: deps.Now, jitter: deps.Jitter, series: map[string]int{},
		// A subscription's delivery timeout is at most half the lease
		// (policyFor), as is the default one (Validate).
		stallLimit: liveness.Limit(cfg.QueryTimeout, cfg.LeaseTTL/2),
	}
	n.db = &db{sql: deps.DB, instance: leaseOwner(cfg.InstanceID), ttl: cfg.LeaseTTL, timeout: cfg.QueryTimeout, ops: &n.ops}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("component", "notifier", "instance", cfg.InstanceID)
	if n.now == nil {
		n.now = time.Now
	}
	n.ops.Now = n.now
	if n.jitter == nil {
		n.jitter = rand.Float64
	}
	client := deps.Client
	if client == nil {
		client = &http.Client{
			// A redirect is an answer to fix in the subscription, not to
			// follow (a POST would turn into a GET).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	n.sender = &webhook.Sender{Client: client, Now: n.now, UserAgent: cfg.UserAgent}
	return n, nil
}

// Run drains subscribers until ctx ends; it returns nil then, after giving
// its leases up.
func (n *Notifier) Run(ctx context.Context) error {
	workers := map[string]context.CancelFunc{}
	exited := make(chan string)
	var wg sync.WaitGroup
	defer func() {
		for _, cancel := range workers {
			cancel()
		}
		wg.Wait()
	}()
	scan := time.NewTicker(n.cfg.ScanInterval)
	defer scan.Stop()
	var pruned time.Time
	for {
		n.scan(ctx, workers, exited, &wg)
		// Every instance prunes (it is idempotent), at most every tenth of
		// the retention and at least hourly.
		if every := min(time.Hour, n.cfg.DeadLetterRetention/10); time.Since(pruned) >= every {
			pruned = time.Now()
			n.pruneDeadLetters(ctx)
		}
		// A worker that stopped (lease lost, database error) is taken up
		// again at the next scan, not at once: no hot loop on a persistent
		// error.
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case id := <-exited:
				if cancel, ok := workers[id]; ok {
					cancel()
					delete(workers, id)
					n.m.leases.Dec()
				}
			case <-scan.C:
				break wait
			}
		}
	}
}

// scan starts a worker for every subscriber without one whose lease it can
// take: live subscriptions, and deleted ones with rows left to dead-letter.
func (n *Notifier) scan(ctx context.Context, workers map[string]context.CancelFunc, exited chan<- string, wg *sync.WaitGroup) {
	subs, err := n.db.subscriptions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("scan subscriptions", "err", err)
		}
		return
	}
	defer n.forget(subs, workers)
	for _, s := range subs {
		if _, ok := workers[s.id]; ok {
			continue
		}
		if s.deleted && !n.hasPending(ctx, s.id) {
			continue
		}
		p, ok, err := n.db.acquire(ctx, s.id)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("acquire lease", "subscription", s.id, "err", err)
			}
			continue
		}
		if !ok {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		workers[s.id] = cancel
		n.series[s.id] = 0
		n.m.leases.Inc()
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			defer func() {
				select {
				case exited <- id:
				case <-ctx.Done():
				}
			}()
			n.drain(wctx, id, p)
		}(s.id)
	}
}

// forget removes the series of the subscribers gone for forgetScans
// scans: labelled by subscription, they were exported for as long as the
// process ran, one set more for every subscription ever deleted. (Its
// gauges go as soon as its worker ends: see drain.)
func (n *Notifier) forget(subs []subRow, workers map[string]context.CancelFunc) {
	live := make(map[string]bool, len(subs))
	for _, s := range subs {
		if !s.deleted {
			live[s.id] = true
		}
	}
	for id, gone := range n.series {
		if _, ok := workers[id]; ok || live[id] {
			n.series[id] = 0
			continue
		}
		if gone++; gone < forgetScans {
			n.series[id] = gone
			continue
		}
		delete(n.series, id)
		n.m.forget(id)
	}
}

// pruneDeadLetters deletes the dead letters older than the retention, in
// batches so that no statement holds many rows locked.
func (n *Notifier) pruneDeadLetters(ctx context.Context) {
	var total int64
	for {
		res, err := n.db.exec(ctx,
			"DELETE FROM notifier_dead_letters WHERE dead_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND LIMIT 1000",
			n.cfg.DeadLetterRetention.Microseconds())
		var k int64
		if err == nil {
			k, err = res.RowsAffected()
		}
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("prune dead letters", "err", err)
			}
			return
		}
		total += k
		if k < 1000 {
			break
		}
	}
	if total > 0 {
		n.log.Info("dead letters past retention deleted", "count", total, "retention", n.cfg.DeadLetterRetention)
	}
}

func (n *Notifier) hasPending(ctx context.Context, id string) bool {
	var one int
	err := n.db.scanRow(ctx, []any{&one}, "SELECT 1 FROM notifier_outbox WHERE subscription_id = ? LIMIT 1", id)
	return err == nil
}

// worker is the state of one drained subscriber; it is owned by drain's
// goroutine.
type worker struct {
	n          *Notifier
	id         string
	log        *slog.Logger
	cur        pos // the stored cursor
	spec       subscription.Spec
	deleted    bool
	deletedSeq int64 // the seq of the deletion (0: unknown, every pending row is its)
	// formerThrough is the seq of the id's latest deletion while it lives
	// again: rows up to it were derived for the deleted subscription.
	formerThrough int64
	pol           policy
	loadedAt      time.Time
	renewedAt     time.Time
	countedAt     time.Time
	overLimit     bool
	policyDue     bool // over the limit, its dead_letter policy waiting for the cursor
}

// drain delivers subscriber id's rows from cursor p while it holds the
// lease, then releases it.
func (n *Notifier) drain(ctx context.Context, id string, p pos) {
	w := &worker{n: n, id: id, cur: p, log: n.log.With("subscription", id), renewedAt: n.now()}
	defer func() {
		// Whoever drains the subscriber next exports its gauges; stale
		// values here would be a false alarm (or a hidden one).
		n.m.backlog.DeleteLabelValues(id)
		n.m.oldestAge.DeleteLabelValues(id)
		n.m.overLimit.DeleteLabelValues(id)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := n.db.release(rctx, id); err != nil {
			w.log.Warn("release lease", "err", err)
		}
	}()
	w.log.Info("draining subscriber", "next_seq", p.seq, "next_ord", p.ord)
	if err := w.run(ctx); err != nil && ctx.Err() == nil {
		if errors.Is(err, errLeaseLost) {
			w.log.Warn("lease lost; another instance drains the subscriber", "err", err)
		} else {
			w.log.Error("subscriber worker stopped", "err", err)
		}
	}
}

func (w *worker) run(ctx context.Context) error {
	n := w.n
	for ctx.Err() == nil {
		if err := w.housekeep(ctx, true); err != nil {
			return err
		}
		if w.deleted {
			// Only the rows of the deleted subscription, derived from the
			// log before its deletion: the same id added again meanwhile
			// has rows after it, which are its own.
			var through *pos
			if w.deletedSeq > 0 {
				through = &pos{seq: w.deletedSeq, ord: math.MaxInt32 - 1} // every row of that seq; the cursor (INT) goes to MaxInt32
			}
			return w.dropDeleted(ctx, through, "subscription deleted with rows pending; moved them to the dead-letter table")
		}
		if w.formerThrough > 0 && w.cur.less(pos{seq: w.formerThrough, ord: math.MaxInt32}) {
			// Deleted and added again before this worker saw the deletion:
			// the rows up to it are the deleted subscription's, not to be
			// sent to the new one.
			through := pos{seq: w.formerThrough, ord: math.MaxInt32 - 1}
			if err := w.dropDeleted(ctx, &through, "subscription deleted and added again with rows pending; moved its former rows to the dead-letter table"); err != nil {
				return err
			}
			continue
		}
		rows, err := n.db.fetch(ctx, w.id, w.cur, n.cfg.BatchSize, n.now())
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			// wait renews the lease on time, however long the poll
			// interval; a failed renewal is sorted out by housekeep.
			if !w.wait(ctx, n.cfg.PollInterval) && ctx.Err() != nil {
				return nil
			}
			continue
		}
		// The subscription as these rows need it: a change of it was
		// committed with the rows derived after it (outbox.Write), so it
		// is read after them, not at the next periodic reload (the rows
		// after a URL change go to the new URL).
		if err := w.load(ctx); err != nil {
			return err
		}
		if w.deleted || rows[0].pos.seq <= w.formerThrough {
			continue // sorted out at the top of the loop
		}
		if err := w.deliverBatch(ctx, rows); err != nil {
			return err
		}
	}
	return nil
}

// dropDeleted moves the rows from the cursor through through (nil: all)
// to the dead-letter table as a deleted subscription's, and logs msg when
// it moved any.
func (w *worker) dropDeleted(ctx context.Context, through *pos, msg string) error {
	// On an error, the rows moved are those of the transactions before it.
	np, moved, err := w.n.db.deadLetter(ctx, w.id, w.cur, through, "subscription deleted")
	w.cur = np
	if moved > 0 {
		w.n.m.deadLettered.WithLabelValues(w.id, "deleted").Add(float64(moved))
		w.log.Warn(msg, "rows", moved)
	}
	return err
}

// housekeep renews the lease, reloads the spec and counts the backlog when
// they are due. synced says that no delivery is waiting for a cursor move;
// only then may the backlog policy move rows (from the stored cursor).
func (w *worker) housekeep(ctx context.Context, synced bool) error {
	n := w.n
	now := n.now()
	if now.Sub(w.renewedAt) >= n.cfg.LeaseTTL/3 {
		if err := n.db.renew(ctx, w.id); err != nil {
			return err
		}
		w.renewedAt = now
	}
	if w.loadedAt.IsZero() || now.Sub(w.loadedAt) >= n.cfg.ScanInterval {
		if err := w.load(ctx); err != nil {
			return err
		}
	}
	// A backlog policy that had to wait for the cursor runs as soon as
	// the cursor is stored, not a status interval later. A deleted
	// subscription's rows all go to the dead-letter table (run): no
	// policy of its applies to them, and it may never have been loaded.
	if w.deleted {
		return nil
	}
	if w.countedAt.IsZero() || now.Sub(w.countedAt) >= n.cfg.StatusInterval || (w.policyDue && synced) {
		if err := w.count(ctx, synced); err != nil {
			return err
		}
		w.countedAt = now
	}
	return nil
}

// load reads the subscription: its spec and policy, or its deletion.
func (w *worker) load(ctx context.Context) error {
	n := w.n
	s, ok, err := n.db.subscription(ctx, w.id)
	if err != nil {
		return err
	}
	w.loadedAt = n.now()
	if !ok || s.deleted {
		w.deleted, w.deletedSeq = true, s.seq
		return nil
	}
	w.formerThrough = s.deletedSeq
	spec, err := subscription.Decode(s.spec)
	if err != nil {
		// The leader stores only specs the registry accepted.
		return fmt.Errorf("stored spec of %s: %w", w.id, err)
	}
	if spec.SecretRef == "" && (w.spec.URL != spec.URL || w.spec.SecretRef != "") {
		n.log.Warn("subscription has no secret_ref: its notifications are sent unsigned", "subscription", w.id)
	}
	w.spec, w.pol = spec, n.cfg.policyFor(spec)
	return nil
}

// count measures the backlog, exports it, and applies the backlog policy.
func (w *worker) count(ctx context.Context, synced bool) error {
	n := w.n
	backlog, oldest, age, err := n.db.backlog(ctx, w.id, w.cur)
	if err != nil {
		return err
	}
	if over := backlog > int64(w.pol.maxBacklog); over {
		if !w.overLimit {
			w.log.Error("subscriber backlog over its limit", "backlog", backlog, "max_backlog", w.pol.maxBacklog, "policy", w.pol.backlogPolicy)
		}
		w.overLimit = true
		w.policyDue = w.pol.backlogPolicy == subscription.BacklogDeadLetter && !synced
		if w.pol.backlogPolicy == subscription.BacklogDeadLetter && synced {
			excess := backlog - int64(w.pol.maxBacklog)
			last, err := n.db.nth(ctx, w.id, w.cur, excess)
			if err != nil {
				return err
			}
			np, moved, err := n.db.deadLetter(ctx, w.id, w.cur, &last, fmt.Sprintf("backlog over max_backlog %d", w.pol.maxBacklog))
			w.cur = np
			if moved > 0 || err == nil {
				n.m.deadLettered.WithLabelValues(w.id, "backlog").Add(float64(moved))
				w.log.Error("moved the oldest rows beyond max_backlog to the dead-letter table", "rows", moved)
			}
			if err != nil {
				return err
			}
			backlog -= moved
			if backlog, oldest, age, err = n.db.backlog(ctx, w.id, w.cur); err != nil {
				return err
			}
		}
	} else {
		w.policyDue = false
		if w.overLimit {
			w.log.Info("subscriber backlog back under its limit", "backlog", backlog)
			w.overLimit = false
		}
	}
	n.m.backlog.WithLabelValues(w.id).Set(float64(backlog))
	n.m.oldestAge.WithLabelValues(w.id).Set(age.Seconds())
	ol := 0.0
	if w.overLimit {
		ol = 1
	}
	n.m.overLimit.WithLabelValues(w.id).Set(ol)
	return n.db.recordStatus(ctx, w.id, backlog, oldest)
}

// flushEvery bounds the deliveries between cursor moves in a healthy run,
// which bounds the repeats after a crash.
const flushEvery = 50

// deliverBatch sends rows in order; it returns with the cursor stored past
// the last one delivered or dead-lettered.
func (w *worker) deliverBatch(ctx context.Context, rows []pending) error {
	n := w.n
	next := w.cur
	var delivered int64
	var lastOK time.Time
	flush := func(failing bool, msg string) error {
		if next.less(w.cur) {
			// Rows were dead-lettered past next meanwhile (backlog policy).
			next = w.cur
		}
		if next == w.cur && delivered == 0 && !failing {
			return nil
		}
		fctx := ctx
		if ctx.Err() != nil {
			// Shutting down: still store what was delivered, so that a
			// restart repeats as little as possible.
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
		}
		renewing := n.now() // advance renews the lease: counted from before it
		if err := n.db.advance(fctx, w.id, w.cur, next, progress{delivered: delivered, failing: failing, lastError: msg, succeededAt: lastOK}); err != nil {
			return err
		}
		w.cur, delivered, lastOK = next, 0, time.Time{}
		w.renewedAt = renewing
		return nil
	}
	for _, r := range rows {
		attempt, refusals := 0, 0
		for {
			if w.policyDue && next != w.cur {
				// The backlog policy moves rows from the stored cursor:
				// store it first, so that the policy runs now rather than
				// up to flushEvery deliveries later.
				if err := flush(false, ""); err != nil {
					return err
				}
			}
			if err := w.housekeep(ctx, next == w.cur); err != nil {
				// Still store what was delivered (a stop that lands in a
				// housekeeping query, or the database failing there), so
				// that it is not sent again.
				if ferr := flush(false, ""); ferr != nil {
					return errors.Join(err, ferr)
				}
				return err
			}
			if w.deleted || r.pos.seq <= w.formerThrough || ctx.Err() != nil {
				// Deleted (and maybe added again) meanwhile: run sorts out
				// the rows of the deleted subscription.
				return flush(false, "")
			}
			if r.pos.less(w.cur) || r.pos.less(next) {
				break // dead-lettered by the backlog policy meanwhile
			}
			// The age as the database measures it (it stamped queued_at):
			// a notifier's clock ahead of the database's would expire fresh
			// rows, one behind it would keep stale ones.
			if age := r.ageAt(n.now()); age > w.pol.maxAge {
				if err := flush(false, ""); err != nil {
					return err
				}
				rp := r.pos
				np, moved, err := n.db.deadLetter(ctx, w.id, w.cur, &rp, fmt.Sprintf("undelivered after %s (max_age %s)", age.Round(time.Second), w.pol.maxAge))
				if err != nil {
					return err
				}
				w.cur, next = np, np
				n.m.deadLettered.WithLabelValues(w.id, "expired").Add(float64(moved))
				w.log.Error("row expired undelivered; moved to the dead-letter table", "seq", r.seq, "ord", r.ord, "webhook_id", r.webhookID, "max_age", w.pol.maxAge)
				break
			}
			// The attempt must end while the lease holds: housekeeping
			// (backlog counts, status writes) may have used up the margin
			// since the last renewal.
			if n.now().Sub(w.renewedAt)+w.pol.timeout > 2*n.cfg.LeaseTTL/3 {
				renewing := n.now()
				if err := n.db.renew(ctx, w.id); err != nil {
					if ferr := flush(false, ""); ferr != nil {
						return errors.Join(err, ferr)
					}
					return err
				}
				w.renewedAt = renewing
			}
			var err error
			secret, hasSecret := n.secrets[w.spec.SecretRef]
			if w.spec.SecretRef != "" && !hasSecret {
				err = fmt.Errorf("secret_ref %q is not in notifier.secrets", w.spec.SecretRef)
			} else {
				n.m.attempts.WithLabelValues(w.id).Inc()
				// A stop (SIGTERM) lets the request finish, within its
				// timeout and the lease, rather than cut it off to send it
				// again after a restart; the loop stops before the next.
				end := n.ops.Begin()
				err = n.sender.Send(context.WithoutCancel(ctx), webhook.Request{
					URL: w.spec.URL, ID: r.webhookID, Body: r.payload, Headers: w.spec.Headers, Secret: secret, Timeout: w.pol.timeout,
				})
				end()
			}
			if err == nil {
				now := n.now()
				n.m.delivered.WithLabelValues(w.id).Inc()
				n.m.latency.WithLabelValues(w.id).Observe(r.ageAt(now).Seconds())
				if attempt > 0 {
					w.log.Info("subscriber recovered", "attempts", attempt+1, "webhook_id", r.webhookID)
				}
				next, delivered, lastOK = r.after(), delivered+1, now
				if delivered >= flushEvery || attempt > 0 {
					if err := flush(false, ""); err != nil {
						return err
					}
				}
				break
			}
			if ctx.Err() != nil {
				return flush(false, "")
			}
			n.m.failures.WithLabelValues(w.id).Inc()
			if refused(err) {
				refusals++
			} else {
				refusals = 0
			}
			if limit := n.cfg.Delivery.MaxRefusals; limit > 0 && refusals >= limit {
				if err := flush(false, ""); err != nil {
					return err
				}
				rp := r.pos
				np, moved, derr := n.db.deadLetter(ctx, w.id, w.cur, &rp, fmt.Sprintf("refused by the receiver %d times (max_refusals): %v", refusals, err))
				if derr != nil {
					return derr
				}
				w.cur, next = np, np
				n.m.deadLettered.WithLabelValues(w.id, "refused").Add(float64(moved))
				w.log.Error("row refused by the receiver; moved to the dead-letter table", "seq", r.seq, "ord", r.ord, "webhook_id", r.webhookID,
					"refusals", refusals, "err", err)
				break
			}
			if attempt == 0 {
				w.log.Warn("delivery failed; retrying with backoff", "webhook_id", r.webhookID, "seq", r.seq, "err", err)
				if err := flush(true, err.Error()); err != nil {
					return err
				}
			}
			d := w.backoff(attempt)
			// A receiver that says when to come back (429, 503 with
			// Retry-After) is not asked again before, up to backoff_max.
			var se *webhook.StatusError
			if errors.As(err, &se) && se.RetryAfter > d {
				d = min(se.RetryAfter, w.pol.backoffMax)
			}
			attempt++
			if attempt%10 == 0 {
				w.log.Warn("subscriber still failing", "attempts", attempt, "webhook_id", r.webhookID, "err", err, "next_in", d)
				if err := n.db.recordFailure(ctx, w.id, err.Error()); err != nil {
					return err
				}
			}
			if !w.wait(ctx, d) {
				return flush(false, "")
			}
		}
	}
	return flush(false, "")
}

// refused reports an answer that refuses the request itself (it will not
// be taken however often it is sent), as opposed to a receiver that is
// down, overloaded or not configured for us yet.
func refused(err error) bool {
	var se *webhook.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// backoff is min(initial*2^attempt, max), with jitter over its upper half.
func (w *worker) backoff(attempt int) time.Duration {
	d := w.pol.backoffInitial
	for i := 0; i < attempt && d < w.pol.backoffMax; i++ {
		d *= 2
	}
	d = min(d, w.pol.backoffMax)
	return d/2 + time.Duration(w.n.jitter()*float64(d/2))
}

// wait sleeps d, renewing the lease whenever LeaseTTL/3 has passed since
// the last renewal; false if ctx ended or a renewal (or a read of the
// subscription) failed. The steps are counted from the last renewal, not
// from the start of the wait: the attempt before it may have ended up to
// two thirds of the TTL after that renewal, and a full step more would
// reach the lease's expiry.
//
// It also reads the subscription every ScanInterval and ends early (true)
// when it changed: a backoff earned by a broken URL (up to backoff_max,
// or a receiver's Retry-After) is no reason to wait before trying the URL
// an operator fixed it with, nor to keep a deleted subscription's rows
// from the dead-letter table.
//
// And it counts the backlog every StatusInterval (count, which exports
// the gauges and the status, and leaves a backlog policy that moves rows
// to the next housekeep): counted only between attempts, a failing
// subscriber's backlog and oldest age, the very gauges to alert on for
// it, stood still for as long as the backoff, minutes.
func (w *worker) wait(ctx context.Context, d time.Duration) bool {
	step := w.n.cfg.LeaseTTL / 3
	for d > 0 {
		now := w.n.now()
		if !w.deleted && !w.countedAt.IsZero() && now.Sub(w.countedAt) >= w.n.cfg.StatusInterval {
			if err := w.count(ctx, false); err != nil {
				if ctx.Err() == nil {
					w.log.Warn("count backlog while waiting", "err", err)
				}
				return false
			}
			// From the count's end: stamped with its start, a count that
			// took a StatusInterval or more was due again at once, and the
			// wait counted for ever (a slow database) without waiting.
			w.countedAt = w.n.now()
			continue
		}
		due := step - now.Sub(w.renewedAt)
		if due <= 0 {
			renewing := w.n.now()
			if err := w.n.db.renew(ctx, w.id); err != nil {
				if ctx.Err() == nil && !errors.Is(err, errLeaseLost) { // drain logs a lost lease
					w.log.Warn("renew lease while backing off", "err", err)
				}
				return false
			}
			w.renewedAt = renewing
			continue
		}
		reload := w.n.cfg.ScanInterval - now.Sub(w.loadedAt)
		if reload <= 0 {
			changed, err := w.reload(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("read subscription while backing off", "err", err)
				}
				return false
			}
			if changed {
				return true
			}
			continue
		}
		s := min(d, due, reload)
		if !w.deleted && !w.countedAt.IsZero() {
			s = min(s, w.n.cfg.StatusInterval-now.Sub(w.countedAt))
		}
		if !sleep(ctx, s) {
			return false
		}
		d -= s
	}
	return true
}

// reload reads the subscription again and reports whether what delivery
// depends on changed: where and how rows are sent, the delivery policy,
// a deletion, or a deletion and addition since the last read. A change of
// the filter or format alone (the leader's business) does not count: it
// is no reason to ask a receiver again before its backoff or Retry-After.
func (w *worker) reload(ctx context.Context) (bool, error) {
	spec, deleted, former := w.spec, w.deleted, w.formerThrough
	if err := w.load(ctx); err != nil {
		return false, err
	}
	return w.deleted != deleted || w.formerThrough != former || !reflect.DeepEqual(sending(w.spec), sending(spec)), nil
}

// sending is what of s the notifier uses to send its rows.
func sending(s subscription.Spec) subscription.Spec {
	return subscription.Spec{URL: s.URL, Headers: s.Headers, SecretRef: s.SecretRef, Delivery: s.Delivery}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
