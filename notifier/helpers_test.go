package notifier_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier/emit"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
)

const testSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func openDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn := storetest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

// leader plays the processor's leader loop on a real graph: it applies
// records, turns their changes into rows with emit, and writes them with
// outbox.Write.
type leader struct {
	t    testing.TB
	db   *sql.DB
	term int64
	g    *graph.Graph
	reg  *subscription.Registry
	seq  int64
}

func newLeader(t testing.TB, db *sql.DB) *leader {
	return &leader{t: t, db: db, term: 1, g: graph.New(nil), reg: subscription.NewRegistry()}
}

func (l *leader) apply(evs ...event.Event) {
	l.t.Helper()
	var b outbox.Batch
	for _, ev := range evs {
		l.seq++
		rec := event.Record{Seq: l.seq, RecordedAt: time.Now().UTC(), Event: ev}
		changes, err := l.g.Apply(rec)
		if err != nil {
			l.t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
		u, ok, err := l.reg.Apply(rec)
		if err != nil {
			l.t.Fatalf("registry seq %d: %v", rec.Seq, err)
		}
		if ok {
			b.Subscriptions = append(b.Subscriptions, u)
		}
		rows, err := emit.Rows(rec, changes, l.g, l.reg)
		if err != nil {
			l.t.Fatal(err)
		}
		b.Rows = append(b.Rows, rows...)
		b.Seq = rec.Seq
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := outbox.Write(ctx, l.db, l.term, b); err != nil {
		l.t.Fatal(err)
	}
}

func (l *leader) subscribe(id, url string, extra string) {
	l.t.Helper()
	spec := fmt.Sprintf(`{"url":%q,"secret_ref":"main"%s}`, url, extra)
	l.apply(event.Event{V: 1, EventID: "sub-" + id + strconv.FormatInt(l.seq, 10), Source: "cli", Kind: event.KindSubscriptionPut,
		ObservedAt: time.Now().UTC(), Subscription: &event.Subscription{ID: id, Spec: json.RawMessage(spec)}})
}

// raise raises n alarms, one record each, batched by 100 records a write.
func (l *leader) raise(prefix string, n int) {
	l.t.Helper()
	var evs []event.Event
	for i := range n {
		evs = append(evs, event.Event{V: 1, EventID: fmt.Sprintf("%s-%d", prefix, i), Source: "test", Kind: event.KindEntityUpsert,
			ObservedAt: time.Now().UTC(), Entity: &event.Entity{Category: "ALARM", Type: "prometheus", ID: fmt.Sprintf("%s-%d", prefix, i),
				Name: fmt.Sprintf("%s-%d", prefix, i), Severity: "critical"}})
		if len(evs) == 100 {
			l.apply(evs...)
			evs = nil
		}
	}
	if len(evs) > 0 {
		l.apply(evs...)
	}
}

// receipt is one request a receiver got.
type receipt struct {
	id     string
	seq    int64
	body   string
	status int
}

// receiver is a real HTTP webhook receiver on loopback that verifies every
// signature (independently of package webhook) and records what it got.
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu    sync.Mutex
	down  bool
	delay time.Duration
	got   []receipt // every request, in arrival order
	bad   []string
	// arrived, if set, gets the webhook id of each 2xx answer.
	arrived chan string
	// onRequest, if set, runs as each request arrives.
	onRequest func()
	// hang, if set, holds every request until the client gives up.
	hang bool
	// holdAt, if set, holds the holdAt-th request (and the later ones)
	// until release is closed; holding counts the requests held.
	holdAt  int
	release chan struct{}
	// refuseSeq, if set, is answered 422 (the payload refused).
	refuseSeq int64
	// refuseBody is the body of that answer.
	refuseBody string
	holding    int
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	down, delay, hang := r.down, r.delay, r.hang
	held := r.holdAt > 0 && len(r.got)+1 >= r.holdAt
	release, onRequest := r.release, r.onRequest
	if onRequest != nil {
		onRequest()
	}
	if held {
		r.holding++
	}
	r.mu.Unlock()
	if held {
		<-release
	}
	if hang {
		<-req.Context().Done()
		return
	}
	if delay > 0 {
		time.Sleep(delay) // the receiver's own processing time, not synchronisation
	}
	status := http.StatusOK
	if down {
		status = http.StatusServiceUnavailable
	}
	var doc struct {
		Seq int64 `json:"seq"`
	}
	_ = json.Unmarshal(body, &doc)
	r.mu.Lock()
	var answer string
	if r.refuseSeq != 0 && doc.Seq == r.refuseSeq {
		status, answer = http.StatusUnprocessableEntity, r.refuseBody
	}
	if err := verifySignature(testSecret, req.Header, body); err != nil {
		r.bad = append(r.bad, err.Error())
	}
	r.got = append(r.got, receipt{id: req.Header.Get("webhook-id"), seq: doc.Seq, body: string(body), status: status})
	arrived := r.arrived
	r.mu.Unlock()
	if arrived != nil && status == http.StatusOK {
		select {
		case arrived <- req.Header.Get("webhook-id"):
		default:
		}
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (r *receiver) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.holding
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *receiver) receipts() []receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receipt(nil), r.got...)
}

// delivered returns the distinct webhook ids answered 2xx, in first
// arrival order, checking that every repeat is an exact repeat.
func (r *receiver) delivered() []receipt {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]string{}
	var out []receipt
	for _, g := range r.got {
		if g.status != http.StatusOK {
			continue
		}
		if body, ok := seen[g.id]; ok {
			if body != g.body {
				r.t.Errorf("webhook id %s delivered twice with different bodies", g.id)
			}
			continue
		}
		seen[g.id] = g.body
		out = append(out, g)
	}
	return out
}

// requests counts the requests received, without copying them.
func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *receiver) badSignatures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// verifySignature follows the Standard Webhooks spec's verification steps.
func verifySignature(secret string, h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("signature mismatch for %s", id)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectedIDs lists the outbox's webhook ids of subscription id in order,
// as the leader wrote them (read before delivery deletes them).
func expectedIDs(t testing.TB, db *sql.DB, id string) []string {
	t.Helper()
	rows, err := db.Query("SELECT webhook_id FROM notifier_outbox WHERE subscription_id = ? ORDER BY seq, ord", id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func ids(rs []receipt) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.id
	}
	return out
}

func deleteSub(id string) event.Event {
	return event.Event{V: 1, EventID: "del-" + id, Source: "cli", Kind: event.KindSubscriptionDelete, ObservedAt: time.Now().UTC(),
		Subscription: &event.Subscription{ID: id}}
}
