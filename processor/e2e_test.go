//go:build e2e

package processor_test

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/freeport"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/processor"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/apiclient"
	"github.com/causeway/causeway/snapshot"
	gocmp "github.com/google/go-cmp/cmp"
)

const adminToken = "e2e-admin-token"

func freePort(t testing.TB) string {
	t.Helper()
	return freeport.Addr(t)
}

type proc struct {
	id, raft, api, cfg, logPath string
	sub                         string // subcommand; default processor
	cmd                         *exec.Cmd
	client                      *apiclient.Client
}

type cluster struct {
	t     testing.TB
	bin   string
	dir   string
	procs []*proc
}

func (c *cluster) start(p *proc) {
	c.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	sub := p.sub
	if sub == "" {
		sub = "processor"
	}
	p.cmd = exec.Command(c.bin, sub, "--config", p.cfg, "--log-level", "info")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close() }()
}

func (c *cluster) status(p *proc) (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := p.client.Status(ctx)
	return r.Status, err
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leader returns the node running the leader's duties, among those not in skip.
func (c *cluster) leader(skip map[string]bool) *proc {
	for _, p := range c.procs {
		if skip[p.id] {
			continue
		}
		if st, err := c.status(p); err == nil && st.LeaderTerm > 0 {
			return p
		}
	}
	return nil
}

func upsert(i int) event.Event {
	host := fmt.Sprintf("host-%d", i%50)
	ev := event.Event{
		V: event.Version, EventID: fmt.Sprintf("e2e-%d", i), Source: "e2e", Kind: event.KindEntityUpsert,
		ObservedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
	}
	if i%10 == 5 {
		// A NIC alarm on a host: raised (warning), made critical, cleared,
		// round after round.
		h := (i / 10) % 50
		alarm := &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: fmt.Sprintf("nic-%d", h), Name: "NIC_DOWN",
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: fmt.Sprintf("host-%d", h), Direction: event.Out}}}
		switch (i / 500) % 3 {
		case 0:
			alarm.Severity = "warning"
		case 1:
			alarm.Severity = "critical"
		default:
			ev.Kind = event.KindEntityDelete
			alarm.Relations = nil
		}
		ev.Entity = alarm
		return ev
	}
	if i%3 == 0 {
		ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: host, Name: host, State: []string{"available", "error"}[i%2]}
	} else {
		vm := fmt.Sprintf("vm-%d", i%2000)
		ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: vm, Name: vm, State: "ACTIVE",
			Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: host, Direction: event.In}}}
	}
	return ev
}

// feeder publishes events to the bus; the persister orders them into the
// log and rings the sequenced doorbell.
type feeder struct {
	pub *bus.Publisher
	n   int
}

func (f *feeder) feed(ctx context.Context, count, per int) error {
	for sent := 0; sent < count; sent += per {
		var evs []event.Event
		for range min(per, count-sent) {
			evs = append(evs, upsert(f.n))
			f.n++
		}
		if err := f.pub.Publish(ctx, evs...); err != nil {
			return err
		}
	}
	return nil
}

// startCluster builds the binary and starts three processors on dsn and
// amqpURL with the given snapshot policy (YAML flow map). Their logs are
// printed when the test fails; every process is killed at its end.
func startCluster(t testing.TB, dsn, amqpURL, policy string) *cluster {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "causeway")
	args := []string{"build", "-o", bin}
	if os.Getenv("CAUSEWAY_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/causeway")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c := &cluster{t: t, bin: bin, dir: dir}
	var peers []string
	for i := range 3 {
		p := &proc{id: fmt.Sprintf("p%d", i), raft: freePort(t), api: freePort(t)}
		c.procs = append(c.procs, p)
		peers = append(peers, fmt.Sprintf("      - {id: %s, address: %q}", p.id, p.raft))
	}
	for _, p := range c.procs {
		p.cfg = filepath.Join(dir, p.id+".yaml")
		p.logPath = filepath.Join(dir, p.id+".log")
		cfg := fmt.Sprintf(`database: {dsn: %q}
bus: {url: %q}
persister: {}
processor:
  node_id: %s
  data_dir: %q
  poll_interval: 500ms
  raft:
    bind_addr: %q
    peers:
%s
  api:
    listen: %q
    tokens:
      - {name: admin, token: %s, role: admin}
  snapshot:
    policy: %s
notifier:
  dsn: %q
  instance_id: e2e
  poll_interval: 50ms
  scan_interval: 200ms
  lease_ttl: 2s
  delivery: {timeout: 1s, backoff_initial: 50ms, backoff_max: 500ms}
`, dsn, amqpURL, p.id, filepath.Join(dir, p.id), p.raft, strings.Join(peers, "\n"), p.api, adminToken, policy, dsn)
		if err := os.WriteFile(p.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		if p.client, err = apiclient.New("http://"+p.api, adminToken, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		c.start(p)
	}
	t.Cleanup(func() {
		for _, p := range c.procs {
			if p.cmd != nil && p.cmd.Process != nil {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
				_ = p.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			for _, p := range c.procs {
				b, _ := os.ReadFile(p.logPath)
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("--- %s log (tail) ---\n%s", p.id, b)
			}
		}
	})
	return c
}

func TestE2EFailover(t *testing.T) {
	amqpURL := bustest.VHost(t)
	dsn := storetest.NewDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCluster(t, dsn, amqpURL, "{every_events: 2000, every_interval: 1s}")
	dir := c.dir

	// The persister: bus -> ordered log -> sequenced doorbell.
	pers := &proc{id: "persister", sub: "persister", cfg: c.procs[0].cfg, logPath: filepath.Join(dir, "persister.log")}
	c.start(pers)
	t.Cleanup(func() {
		_ = pers.cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(pers.logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- persister log (tail) ---\n%s", b)
		}
	})

	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := store.NewLog(db, nil)
	pub, err := bus.NewPublisher(bus.PublisherConfig{Conn: bus.Conn{URL: amqpURL}, SpoolPath: filepath.Join(dir, "feeder-spool.db")}, bus.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Run(ctx) }()
	defer func() {
		cancel()
		<-pubDone
		_ = pub.Close()
	}()
	f := &feeder{pub: pub}

	// Webhook subscribers (the notifier that delivers to them starts
	// once the outbox is checked: it deletes what it delivered).
	hooks := &hookRecv{got: map[string][]string{}}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()
	if err := pub.Publish(ctx,
		subscriptionPut("all", fmt.Sprintf(`{"url":%q}`, hookSrv.URL+"/all")),
		subscriptionPut("crit", fmt.Sprintf(`{"url":%q,"format":"alertmanager","filter":{"severities":["critical"]}}`, hookSrv.URL+"/crit")),
	); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "a leader", 30*time.Second, func() bool { return c.leader(nil) != nil })
	first := c.leader(nil)
	t.Logf("first leader %s", first.id)

	const total = 20000
	feedDone := make(chan error, 1)
	go func() { feedDone <- f.feed(ctx, total, 100) }()

	// Kill the leader with SIGKILL while events flow.
	waitFor(t, "5000 events applied", 60*time.Second, func() bool {
		st, err := c.status(first)
		return err == nil && st.AppliedSeq >= 5000
	})
	killedAt := time.Now()
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var second *proc
	waitFor(t, "a new leader", 30*time.Second, func() bool {
		second = c.leader(map[string]bool{first.id: true})
		return second != nil
	})
	t.Logf("failover: new leader %s running its duties %s after the kill", second.id, time.Since(killedAt))
	waitFor(t, "the new leader ready", 30*time.Second, func() bool {
		st, err := c.status(second)
		return err == nil && st.Ready
	})
	t.Logf("failover: new leader %s ready (leader known, within ready_lag of the head) %s after the kill", second.id, time.Since(killedAt))
	waitFor(t, "a snapshot by the new leader", 60*time.Second, func() bool {
		st, err := c.status(second)
		return err == nil && st.SnapshotsWritten > 0
	})
	// Restart the old leader: it loads the newest snapshot and follows.
	c.start(first)

	if err := <-feedDone; err != nil {
		t.Fatalf("feed: %v", err)
	}
	var head int64
	waitFor(t, "the persister to log every event", 120*time.Second, func() bool {
		head, _, err = log.Head(ctx)
		return err == nil && head == total+2 // and the two subscriptions
	})
	for _, p := range c.procs {
		waitFor(t, p.id+" caught up", 120*time.Second, func() bool {
			st, err := c.status(p)
			return err == nil && st.AppliedSeq == head
		})
		st, err := c.status(p)
		if err != nil {
			t.Fatalf("status of %s: %v", p.id, err)
		}
		if st.OutOfOrder != 0 {
			t.Errorf("%s: %d out-of-order applications", p.id, st.OutOfOrder)
		}
		t.Logf("%s: %+v", p.id, st)
	}
	// The reference is a replay of the whole log from scratch: the
	// restarted leader loaded the newest snapshot, as a reconstruction
	// does, so comparing the two alone would check a snapshot against
	// itself.
	want := replayDump(t, ctx, log, head)
	rc, res := reconstruct(t, ctx, dsn, head)
	if !bytes.Equal(rc, want) {
		t.Errorf("a reconstruction at seq %d (newest snapshot + replay) differs from a replay of the whole log (%d vs %d bytes)", head, len(rc), len(want))
	}
	// The new leader wrote a snapshot (awaited above): without one the
	// reconstruction is a replay from scratch and the comparison cannot fail.
	if res.SnapshotSeq == 0 || res.Skipped > 0 {
		t.Errorf("the reconstruction at seq %d started from snapshot seq %d, skipping %d unusable ones; want a snapshot and none skipped", head, res.SnapshotSeq, res.Skipped)
	}
	for _, p := range c.procs {
		got, err := p.client.Dump(ctx)
		if err != nil {
			t.Fatalf("dump %s: %v", p.id, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: dump differs from a replay of the whole log (%d vs %d bytes)", p.id, len(got), len(want))
		}
	}

	// Every alarm transition of the log has its outbox rows exactly once,
	// as an in-process replay derives them, though the leader was killed
	// while writing them; the notifier then delivers them in order.
	waitFor(t, "the outbox head at the log head", 30*time.Second, func() bool {
		h, err := outbox.Head(ctx, db)
		return err == nil && h >= head
	})
	wantRows := replayRows(t, ctx, log, head)
	gotRows := outboxRows(t, ctx, db, head)
	if len(wantRows) < 100 {
		t.Fatalf("only %d outbox rows derived from the log: too few alarm transitions to test", len(wantRows))
	}
	if diff := gocmp.Diff(gotRows, wantRows); diff != "" {
		t.Fatalf("outbox rows (-stored +replayed):\n%s", diff)
	}
	perSub := map[string][]string{}
	for _, r := range wantRows {
		perSub[r.SubscriptionID] = append(perSub[r.SubscriptionID], r.WebhookID)
	}
	if len(perSub["all"]) == 0 || len(perSub["crit"]) == 0 || len(perSub["crit"]) >= len(perSub["all"]) {
		t.Fatalf("rows per subscriber: all %d, crit %d", len(perSub["all"]), len(perSub["crit"]))
	}
	notif := &proc{id: "notifier", sub: "notifier", cfg: c.procs[0].cfg, logPath: filepath.Join(dir, "notifier.log")}
	c.start(notif)
	t.Cleanup(func() {
		_ = notif.cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(notif.logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- notifier log (tail) ---\n%s", b)
		}
	})
	waitFor(t, "every row delivered", 60*time.Second, func() bool { return hooks.has(perSub) })
	for sub, ids := range perSub {
		if got := hooks.firstSeen(sub, len(ids)); !slices.Equal(got, ids) {
			t.Errorf("%s: deliveries out of order (%d expected)", sub, len(ids))
		}
	}
	t.Logf("outbox: %d rows (all %d, crit %d), each exactly once and delivered in order", len(wantRows), len(perSub["all"]), len(perSub["crit"]))

	// Pause the leader until another is elected, feed events so the new
	// leader writes snapshots, resume it: its late snapshot write is fenced.
	fenced := false
	for attempt := 0; attempt < 8 && !fenced; attempt++ {
		var lead *proc
		waitFor(t, "a leader", 30*time.Second, func() bool { lead = c.leader(nil); return lead != nil })
		if err := lead.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		var next *proc
		waitFor(t, "a leader while paused", 30*time.Second, func() bool {
			next = c.leader(map[string]bool{lead.id: true})
			return next != nil
		})
		before, _ := c.status(next)
		if err := f.feed(ctx, 3000, 100); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a snapshot by "+next.id, 60*time.Second, func() bool {
			st, err := c.status(next)
			return err == nil && st.SnapshotsWritten > before.SnapshotsWritten
		})
		if err := lead.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		waitFor(t, lead.id+" follows again", 30*time.Second, func() bool {
			st, err := c.status(lead)
			return err == nil && st.LeaderTerm == 0 && st.Leader != "" && st.Leader != lead.id
		})
		st, _ := c.status(lead)
		t.Logf("attempt %d: paused %s, fenced writes %d", attempt, lead.id, st.FencedWrites)
		fenced = st.FencedWrites > 0
	}
	if !fenced {
		t.Errorf("no paused leader's write was refused by the fence in 8 attempts")
	}

	// Membership through the CLI: remove a follower, join it back.
	var lead *proc
	waitFor(t, "a leader", 30*time.Second, func() bool { lead = c.leader(nil); return lead != nil })
	var follower *proc
	for _, p := range c.procs {
		if p != lead {
			follower = p
			break
		}
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(c.bin, append(args, "--url", "http://"+lead.api, "--token", adminToken, "-o", "json")...).CombinedOutput()
		if err != nil {
			t.Fatalf("causeway %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	members := func() int {
		var r api.ClusterResponse
		if err := json.Unmarshal([]byte(cli("cluster", "status")), &r); err != nil {
			t.Fatal(err)
		}
		return len(r.Servers)
	}
	if n := members(); n != 3 {
		t.Fatalf("cluster status: %d members", n)
	}
	cli("cluster", "remove", follower.id)
	if n := members(); n != 2 {
		t.Fatalf("after remove: %d members", n)
	}
	cli("cluster", "join", follower.id, follower.raft)
	if n := members(); n != 3 {
		t.Fatalf("after join: %d members", n)
	}
	waitFor(t, follower.id+" follows the leader again", 30*time.Second, func() bool {
		st, err := c.status(follower)
		return err == nil && st.Leader != "" && st.Ready
	})

	// SIGTERM: the leader hands leadership over and every process exits 0.
	waitFor(t, "a leader", 30*time.Second, func() bool { lead = c.leader(nil); return lead != nil })
	stopped := time.Now()
	if err := lead.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var next *proc
	waitFor(t, "a leader after SIGTERM", 30*time.Second, func() bool { next = c.leader(map[string]bool{lead.id: true}); return next != nil })
	t.Logf("leadership handed over %s after SIGTERM", time.Since(stopped))
	// It went to the node the presence rows named (all are ready here).
	waitFor(t, lead.id+" exits", 30*time.Second, func() bool { return lead.cmd.ProcessState != nil })
	handOver := regexp.MustCompile(`handing leadership over.*to=` + next.id + `\b`)
	if b, _ := os.ReadFile(lead.logPath); !handOver.Match(b) {
		t.Errorf("%s's log does not say it handed leadership over to %s (%s)", lead.id, next.id, handOver)
	}
	for _, p := range c.procs {
		if p != lead {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range c.procs {
		waitFor(t, p.id+" exits", 30*time.Second, func() bool { return p.cmd.ProcessState != nil })
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", p.id, code)
		}
	}
}

func subscriptionPut(id, spec string) event.Event {
	return event.Event{V: event.Version, EventID: "e2e-sub-" + id, Source: "e2e", Kind: event.KindSubscriptionPut,
		ObservedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Subscription: &event.Subscription{ID: id, Spec: []byte(spec)}}
}

// hookRecv is the webhook receiver of every subscriber (by path): it
// records the webhook ids in the order they arrive.
type hookRecv struct {
	mu  sync.Mutex
	got map[string][]string
}

func (h *hookRecv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("webhook-id")
	if id == "" {
		http.Error(w, "no webhook-id", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	sub := strings.TrimPrefix(r.URL.Path, "/")
	h.got[sub] = append(h.got[sub], id)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// firstSeen returns the first n distinct ids sub received, in the order
// of their first delivery (a retry after a failover may repeat one).
func (h *hookRecv) firstSeen(sub string, n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, id := range h.got[sub] {
		if !seen[id] && len(out) < n {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (h *hookRecv) has(want map[string][]string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub, ids := range want {
		got := map[string]bool{}
		for _, id := range h.got[sub] {
			got[id] = true
		}
		for _, id := range ids {
			if !got[id] {
				return false
			}
		}
	}
	return true
}

type storedRow struct {
	SubscriptionID string
	Seq            int64
	Ord            int
	WebhookID      string
	Payload        string
}

// replayRows derives the outbox rows of seqs 1..head by replaying the log
// in-process, as every processor does.
func replayRows(t *testing.T, ctx context.Context, log *store.Log, head int64) []storedRow {
	t.Helper()
	m, err := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
	if err != nil {
		t.Fatal(err)
	}
	var out []storedRow
	for rec, err := range log.Scan(ctx, 0, head) {
		if err != nil {
			t.Fatal(err)
		}
		o, _ := processor.ProduceNode(m, rec)
		for _, r := range o.Rows {
			out = append(out, storedRow{r.SubscriptionID, r.Seq, r.Ord, r.WebhookID, string(r.Payload)})
		}
	}
	slices.SortFunc(out, func(a, b storedRow) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), strings.Compare(a.SubscriptionID, b.SubscriptionID), cmp.Compare(a.Ord, b.Ord))
	})
	return out
}

func outboxRows(t *testing.T, ctx context.Context, db *sql.DB, head int64) []storedRow {
	t.Helper()
	rows, err := db.QueryContext(ctx, "SELECT subscription_id, seq, ord, webhook_id, payload FROM notifier_outbox WHERE seq <= ? ORDER BY seq, subscription_id, ord", head)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.SubscriptionID, &r.Seq, &r.Ord, &r.WebhookID, &r.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// replayDump applies the log up to seq from scratch, with no snapshot, and
// returns the canonical dump.
func replayDump(t *testing.T, ctx context.Context, log *store.Log, seq int64) []byte {
	t.Helper()
	m, err := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range log.Scan(ctx, 0, seq) {
		if err != nil {
			t.Fatalf("replay to seq %d: %v", seq, err)
		}
		_ = m.Apply(rec) // a record the evaluator refuses is refused alike everywhere
	}
	var b bytes.Buffer
	if err := m.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func reconstruct(t *testing.T, ctx context.Context, dsn string, seq int64) ([]byte, snapshot.Reconstruction) {
	t.Helper()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: db, Events: store.NewLog(db, nil), Factory: snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Reconstruct(ctx, snapshot.AtSeq(seq))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := res.Machine.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), res
}
