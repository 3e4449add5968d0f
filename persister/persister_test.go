package persister

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
)

// journal records what the fakes saw, in order, across goroutines.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}

// split separates the sequenced publishes, which run on their own
// goroutine, from the rest; each part keeps its order.
func (j *journal) split() (main, published []string) {
	for _, l := range j.get() {
		if strings.HasPrefix(l, "publish") {
			published = append(published, l)
		} else {
			main = append(main, l)
		}
	}
	return main, published
}

func checkJournal(t *testing.T, j *journal, wantMain, wantPublished []string) {
	t.Helper()
	main, pub := j.split()
	if diff := cmp.Diff(main, wantMain); diff != "" {
		t.Errorf("journal (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(pub, wantPublished); diff != "" {
		t.Errorf("sequenced publishes (-got +want):\n%s", diff)
	}
}

type fakeMsg struct {
	tag  int
	body []byte
	j    *journal
	at   string // the recorded_at header, "" for none
	// ackFails makes Ack fail with this error.
	ackFails error
	// ch is the broker channel it came on.
	ch int
	// q and epoch: the queue that handed it out, and its epoch then; a
	// Pause of q since makes it stale.
	q     *fakeQueue
	epoch int64
	// opened is when its channel was opened (zero: not told).
	opened time.Time
}

func (m *fakeMsg) Channel() any { return m.ch }

func (m *fakeMsg) ChannelOpened() time.Time { return m.opened }

func (m *fakeMsg) Stale() bool { return m.q != nil && m.epoch < m.q.epoch.Load() }

func (m *fakeMsg) Body() []byte { return m.body }
func (m *fakeMsg) RecordedAt() (time.Time, bool, error) {
	if m.at == "" {
		return time.Time{}, false, nil
	}
	at, err := time.Parse(time.RFC3339Nano, m.at)
	return at, err == nil, err
}
func (m *fakeMsg) Ack(multiple bool) error {
	if m.ackFails != nil {
		m.j.add("ack %d failed", m.tag)
		return m.ackFails
	}
	m.j.add("ack %d multiple=%v", m.tag, multiple)
	return nil
}

type fakeQueue struct {
	j    *journal
	in   chan Message
	out  chan Message
	next int
	// handoff, when positive, is how long each message takes to reach
	// Messages once Run took it: the hand-off between the goroutines of
	// a real client (the AMQP library's buffer, bus.Consumer, BusQueue),
	// during which Messages has no message ready although one waits.
	handoff time.Duration
	// dlFails makes DeadLetter fail with this error (the publish and the
	// reject both failed, the channel not seen closed).
	dlFails error
	// epoch counts the Pauses: the messages handed out before one are
	// stale. mu guards paused, and changed, which is closed (and
	// replaced) by every Pause and Resume.
	epoch   atomic.Int64
	mu      sync.Mutex
	paused  bool
	changed chan struct{}
}

func newFakeQueue(j *journal) *fakeQueue {
	return &fakeQueue{j: j, in: make(chan Message, 1000), out: make(chan Message), changed: make(chan struct{})}
}

func (q *fakeQueue) push(bodies ...[]byte) {
	for _, b := range bodies {
		q.next++
		q.in <- &fakeMsg{tag: q.next, body: b, j: q.j}
	}
}

// Run hands out the messages pushed, but none while paused. Unlike a
// broker, a Pause does not requeue: a test pushes the redeliveries.
func (q *fakeQueue) Run(ctx context.Context) error {
	defer close(q.out)
	for {
		q.mu.Lock()
		in, changed := q.in, q.changed
		if q.paused {
			in = nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			q.j.add("queue stopped")
			return nil
		case <-changed:
		case m := <-in:
			if fm, ok := m.(*fakeMsg); ok {
				fm.q, fm.epoch = q, q.epoch.Load()
			}
			if q.handoff > 0 {
				time.Sleep(q.handoff)
			}
			select {
			case q.out <- m:
			case <-ctx.Done():
				q.j.add("queue stopped")
				return nil
			}
		}
	}
}

func (q *fakeQueue) Messages() <-chan Message { return q.out }

func (q *fakeQueue) Pause(context.Context) error {
	q.j.add("pause")
	q.epoch.Add(1)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.paused = true
	close(q.changed)
	q.changed = make(chan struct{})
	return nil
}

func (q *fakeQueue) Resume() {
	q.j.add("resume")
	q.mu.Lock()
	defer q.mu.Unlock()
	q.paused = false
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *fakeQueue) DeadLetter(_ context.Context, m Message, reason string) error {
	if q.dlFails != nil {
		q.j.add("dead-letter %d failed", m.(*fakeMsg).tag)
		return q.dlFails
	}
	q.j.add("dead-letter %d %s", m.(*fakeMsg).tag, strings.SplitN(reason, ":", 2)[0])
	return nil
}

// fakeLog dedups and sequences like store.Log; fail decides per call
// whether Append fails.
type fakeLog struct {
	j    *journal
	mu   sync.Mutex
	seen map[string]bool
	seq  int64
	fail func(entries []store.Entry) error
	ats  map[string]time.Time // RecordedAt of each entry appended, by event id
	// bodies are the bodies appended, by event id.
	bodies map[string][]byte
	// hung, while true, makes Append and Ping answer only when their
	// context ends: a database that stopped answering.
	hung atomic.Bool
	// slow, when positive, is how long each Append takes (a time.Duration)
	// before it commits, unless its context ends first; Ping answers at
	// once: a database that is slow, not down.
	slow atomic.Int64
	// refuse, while true, makes Append and Writable fail at once, while
	// Ping answers: a database that answers but refuses writes (read-only).
	refuse atomic.Bool
	// pingRefused, while true, makes Ping fail at once (unless hung), as
	// when new connections are refused while an Append waits on an old
	// one (a database host gone down under it).
	pingRefused atomic.Bool
}

// errReadOnly is how a read-only server refuses a write.
var errReadOnly = &mysql.MySQLError{Number: 1290, Message: "The MariaDB server is running with the --read-only option so it cannot execute this statement"}

func (l *fakeLog) Append(ctx context.Context, entries []store.Entry) (store.Appended, error) {
	if l.hung.Load() {
		<-ctx.Done()
		l.j.add("append %d hung until %v", len(entries), context.Cause(ctx))
		return store.Appended{}, fmt.Errorf("append: %w", ctx.Err())
	}
	if l.refuse.Load() {
		l.j.add("append %d refused", len(entries))
		return store.Appended{}, fmt.Errorf("append: %w", errReadOnly)
	}
	if d := time.Duration(l.slow.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			l.j.add("append %d slow until %v", len(entries), context.Cause(ctx))
			return store.Appended{}, fmt.Errorf("append: %w", ctx.Err())
		case <-t.C:
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		if err := l.fail(entries); err != nil {
			l.j.add("append %d failed", len(entries))
			return store.Appended{}, err
		}
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	out := store.Appended{Batch: event.Batch{PrevSeq: l.seq}}
	for i, e := range entries {
		if l.seen[e.Event.EventID] {
			out.Duplicates = append(out.Duplicates, i)
			continue
		}
		l.seen[e.Event.EventID] = true
		if l.ats == nil {
			l.ats = map[string]time.Time{}
		}
		l.ats[e.Event.EventID] = e.RecordedAt
		if l.bodies == nil {
			l.bodies = map[string][]byte{}
		}
		l.bodies[e.Event.EventID] = e.Body
		l.seq++
		out.Batch.Records = append(out.Batch.Records, event.Record{Seq: l.seq, RecordedAt: time.Now(), Event: e.Event})
	}
	l.j.add("append %d: %d new", len(entries), len(out.Batch.Records))
	return out, nil
}

func (l *fakeLog) MaintainPartitions(context.Context, time.Time, int) ([]string, error) {
	return nil, nil
}

func (l *fakeLog) Retain(context.Context, time.Time, bool) ([]string, time.Time, error) {
	return nil, time.Time{}, nil
}

func (l *fakeLog) TrimThrough(context.Context, int64, store.RetentionLease) (int64, error) {
	return 0, nil
}

func (l *fakeLog) Now(context.Context) (time.Time, error) { return time.Now(), nil }

// Writable answers at once, unless the database hangs (hung: then it
// answers only when its context ends, as Append does) or refuses writes
// (refuse).
func (l *fakeLog) Writable(ctx context.Context) error {
	if l.hung.Load() {
		<-ctx.Done()
		return fmt.Errorf("writable: %w", ctx.Err())
	}
	if l.refuse.Load() {
		return fmt.Errorf("writable: %w", errReadOnly)
	}
	return nil
}

// Ping answers at once, unless the database hangs (hung): then it answers
// only when its context ends, as Append does.
func (l *fakeLog) Ping(ctx context.Context) error {
	if l.hung.Load() {
		<-ctx.Done()
		return fmt.Errorf("ping: %w", ctx.Err())
	}
	if l.pingRefused.Load() {
		return errors.New("ping: dial tcp 127.0.0.1:3306: connect: connection refused")
	}
	return nil
}

func (l *fakeLog) LockRetention(context.Context, time.Duration) (store.RetentionLease, error) {
	return noLease{}, nil
}

// noLease is a retention lock that is always held.
type noLease struct{}

func (noLease) Held(context.Context) error { return nil }
func (noLease) Release()                   {}

type fakeSequencer struct {
	j    *journal
	fail bool
}

func (s *fakeSequencer) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (s *fakeSequencer) PublishSequenced(_ context.Context, b event.Batch) error {
	if s.fail {
		return errors.New("broker away")
	}
	s.j.add("publish %d..%d", b.FirstSeq(), b.LastSeq())
	return nil
}

func body(t testing.TB, id string) []byte {
	t.Helper()
	b, err := event.Encode(event.Event{V: event.Version, EventID: id, Source: "test", Kind: event.KindTick,
		ObservedAt: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type harness struct {
	j      *journal
	q      *fakeQueue
	log    *fakeLog
	seqr   *fakeSequencer
	p      *Persister
	cancel context.CancelFunc
	done   chan error
}

// start runs a persister on fakes; call inside a synctest bubble.
func start(t *testing.T, cfg Config, fail func([]store.Entry) error) *harness {
	t.Helper()
	j := &journal{}
	h := &harness{j: j, q: newFakeQueue(j), log: &fakeLog{j: j, fail: fail}, seqr: &fakeSequencer{j: j}, done: make(chan error, 1)}
	p, err := New(cfg, Deps{Queue: h.q, Log: h.log, Sequencer: h.seqr})
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- p.Run(ctx) }()
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestBatchesBySizeThenTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 3, BatchWait: 50 * time.Millisecond}, nil)
		for i := range 7 {
			h.q.push(body(t, fmt.Sprint("e", i)))
		}
		synctest.Wait()
		want := []string{"append 3: 3 new", "ack 3 multiple=true", "append 3: 3 new", "ack 6 multiple=true"}
		checkJournal(t, h.j, want, []string{"publish 1..3", "publish 4..6"})
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		want = append(want, "append 1: 1 new", "ack 7 multiple=true")
		checkJournal(t, h.j, want, []string{"publish 1..3", "publish 4..6", "publish 7..7"})
		h.stop(t)
		if got := counterValue(t, h.p.m.committed); got != 7 {
			t.Errorf("committed = %v; want 7", got)
		}
	})
}

func TestDeadLettersPoisonAndGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 3, BatchWait: time.Millisecond}, nil)
		invalid := strings.Replace(string(body(t, "x")), `"v":1`, `"v":2`, 1)
		big := `{"v":1,"event_id":"` + strings.Repeat("a", event.MaxEventBytes) + `"}`
		h.q.push(body(t, "a"), []byte("not json"), []byte(invalid), []byte(big), body(t, "b"), body(t, "c"))
		synctest.Wait()
		checkJournal(t, h.j, []string{
			"dead-letter 2 malformed", "dead-letter 3 invalid", "dead-letter 4 too_large",
			"append 3: 3 new", "ack 6 multiple=true",
		}, []string{"publish 1..3"})
		h.stop(t)
		for _, r := range []string{ReasonMalformed, ReasonInvalid, ReasonTooLarge} {
			if got := counterValue(t, h.p.m.deadLettered.WithLabelValues(r)); got != 1 {
				t.Errorf("dead_lettered{reason=%s} = %v; want 1", r, got)
			}
		}
	})
}

// TestKeepRecordedAt checks the recorded_at header of replayed events: a
// persister with keep_recorded_at hands it to the log (and dead-letters a
// header that does not parse); one without ignores it, whatever it says.
func TestKeepRecordedAt(t *testing.T) {
	past := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, Config{BatchSize: 3, BatchWait: time.Millisecond, KeepRecordedAt: keep}, nil)
				for i, at := range []string{past.Format(time.RFC3339Nano), "", "yesterday"} {
					h.q.next++
					h.q.in <- &fakeMsg{tag: h.q.next, body: body(t, fmt.Sprint("e", i)), j: h.j, at: at}
				}
				synctest.Wait()
				h.stop(t)
				h.log.mu.Lock()
				defer h.log.mu.Unlock()
				if keep {
					checkJournal(t, h.j, []string{"dead-letter 3 invalid", "append 2: 2 new", "ack 2 multiple=true", "queue stopped"}, []string{"publish 1..2"})
					if !h.log.ats["e0"].Equal(past) || !h.log.ats["e1"].IsZero() {
						t.Errorf("recorded_at handed to the log: %v; want e0 at %v, e1 unset", h.log.ats, past)
					}
					return
				}
				checkJournal(t, h.j, []string{"append 3: 3 new", "ack 3 multiple=true", "queue stopped"}, []string{"publish 1..3"})
				for id, at := range h.log.ats {
					if !at.IsZero() {
						t.Errorf("%s handed to the log with recorded_at %v without keep_recorded_at", id, at)
					}
				}
			})
		})
	}
}

// TestReplayedStoredEventGoesInAsItWas: a replay re-publishes a log
// written before a rule of input was added (here: an event with the
// evaluator's source). With its recorded_at kept, it is stored as it was;
// the same body as plain input is refused.
func TestReplayedStoredEventGoesInAsItWas(t *testing.T) {
	past := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := func(id string) []byte {
		t.Helper()
		b, err := event.EncodeStored(event.Event{V: event.Version, EventID: id, Source: event.EvaluatorSource, Kind: event.KindTick,
			ObservedAt: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, KeepRecordedAt: true}, nil)
		h.q.next++
		h.q.in <- &fakeMsg{tag: h.q.next, body: old("replayed"), j: h.j, at: past.Format(time.RFC3339Nano)}
		h.q.next++
		h.q.in <- &fakeMsg{tag: h.q.next, body: old("input"), j: h.j}
		synctest.Wait()
		h.stop(t)
		h.log.mu.Lock()
		defer h.log.mu.Unlock()
		checkJournal(t, h.j, []string{"dead-letter 2 invalid", "append 1: 1 new", "ack 1 multiple=true", "queue stopped"}, []string{"publish 1..1"})
		if !h.log.ats["replayed"].Equal(past) {
			t.Errorf("log holds %v; want the replayed event at %v", h.log.ats, past)
		}
	})
}

func TestRetriesWhileDatabaseDownAndAcksOnlyAfterCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := true
		var mu sync.Mutex
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, RetryMin: 100 * time.Millisecond, RetryMax: time.Second},
			func([]store.Entry) error {
				mu.Lock()
				defer mu.Unlock()
				if down {
					return driver.ErrBadConn
				}
				return nil
			})
		h.q.push(body(t, "a"), body(t, "b"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		for _, l := range h.j.get() {
			if strings.HasPrefix(l, "ack") {
				t.Fatalf("acked while the database is down: %v", h.j.get())
			}
		}
		retries := counterValue(t, h.p.m.retries)
		if retries < 8 || retries > 25 {
			t.Errorf("retries in 10s with backoff 100ms..1s = %v; want about 10", retries)
		}
		mu.Lock()
		down = false
		mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		got, pub := h.j.split()
		if want := []string{"append 2: 2 new", "ack 2 multiple=true"}; !cmp.Equal(got[len(got)-2:], want) || !cmp.Equal(pub, []string{"publish 1..2"}) {
			t.Errorf("after the database returned: %v %v; want it to end with %v and publish 1..2", got, pub, want)
		}
		h.stop(t)
	})
}

// TestHungAppendIsRetriedInTheProcess: an Append that the database never
// answers ends at append_timeout and is retried with the backoff, the
// batch unacked meanwhile, for as long as the hang lasts (here ten
// minutes, five stall limits); the persister stays alive all along, so
// systemd does not restart it and the broker redelivers nothing. Once
// the database answers, the batch is committed and acked once.
func TestHungAppendIsRetriedInTheProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 20 * time.Second, RetryMax: time.Second}, nil)
		h.log.hung.Store(true)
		h.q.push(body(t, "a"), body(t, "b"))
		for end := time.Now().Add(10 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
			if !h.p.Alive() {
				t.Errorf("not alive %v into the hang", 10*time.Minute-time.Until(end))
				break
			}
		}
		synctest.Wait()
		got := h.j.get()
		for _, l := range got {
			if strings.HasPrefix(l, "ack") {
				t.Fatalf("acked while the database hung: %v", got)
			}
		}
		// 20 s an attempt and up to 1 s between them: 28 in ten minutes.
		if len(got) < 25 {
			t.Errorf("%d attempts ended in ten minutes of hang with a 20s append_timeout; want about 28: %v", len(got), got)
		}
		for _, l := range got {
			if l != "append 2 hung until context deadline exceeded" {
				t.Errorf("attempt during the hang: %q; want each to end at its deadline", l)
				break
			}
		}
		h.log.hung.Store(false)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		got, pub := h.j.split()
		if want := []string{"append 2: 2 new", "ack 2 multiple=true"}; len(got) < 2 || !cmp.Equal(got[len(got)-2:], want) || !cmp.Equal(pub, []string{"publish 1..2"}) {
			t.Errorf("after the database answered again: %v %v; want it to end with %v and publish 1..2", got, pub, want)
		}
		h.stop(t)
	})
}

// TestSlowAppendGetsLongerBounds: a database that answers pings but needs
// five minutes for every commit, with append_timeout one minute. Each
// attempt that times out while the database answered doubles the next
// one's bound (1, 2, 4, then 8 minutes, which the commit fits in), so the
// batch is committed once, and the persister stays alive meanwhile: the
// stall limit follows the bound (four times it), or the watchdog would
// restart it four minutes into the 8-minute attempt. After the commit the
// bound stays 8 minutes: the commit took more than a quarter of it (see
// TestSlowDatabaseIsLearnedOnce).
func TestSlowAppendGetsLongerBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: time.Minute, RetryMax: time.Second}, nil)
		h.log.slow.Store(int64(5 * time.Minute))
		h.q.push(body(t, "a"), body(t, "b"))
		begin := time.Now()
		for !slices.Contains(h.j.get(), "ack 2 multiple=true") {
			if time.Since(begin) > time.Hour {
				t.Fatalf("not committed in an hour of 5-minute commits: %v", h.j.get())
			}
			if !h.p.Alive() {
				t.Fatalf("not alive %v into the slow commits (bound %v)", time.Since(begin), time.Duration(h.p.bound.Load()))
			}
			time.Sleep(time.Second)
		}
		synctest.Wait()
		checkJournal(t, h.j, []string{
			"append 2 slow until context deadline exceeded",
			"append 2 slow until context deadline exceeded",
			"append 2 slow until context deadline exceeded",
			"append 2: 2 new", "ack 2 multiple=true",
		}, []string{"publish 1..2"})
		if took := time.Since(begin); took > 13*time.Minute {
			t.Errorf("committed after %v; want about 12m (1+2+4 minutes of attempts, backoffs, then 5)", took)
		}
		if got := time.Duration(h.p.bound.Load()); got != 8*time.Minute {
			t.Errorf("bound after the commit = %v; want the 8m learned", got)
		}
		h.stop(t)
	})
}

// TestAppendBoundIsCapped: a commit that needs longer than maxAppendBound
// is retried with that bound, never a longer one, and the persister is
// alive all along. (hold_limit, at its most, does not hand the batch back
// meanwhile.)
func TestAppendBoundIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 1, BatchWait: time.Millisecond, AppendTimeout: 5 * time.Minute, HoldLimit: 24 * time.Hour, RetryMax: time.Second}, nil)
		h.log.slow.Store(int64(time.Hour))
		h.q.push(body(t, "a"))
		for end := time.Now().Add(2 * time.Hour); time.Now().Before(end); time.Sleep(10 * time.Second) {
			if got := time.Duration(h.p.bound.Load()); got > maxAppendBound {
				t.Fatalf("bound %v; want at most %v", got, maxAppendBound)
			}
			if !h.p.Alive() {
				t.Fatalf("not alive, bound %v", time.Duration(h.p.bound.Load()))
			}
		}
		if got := time.Duration(h.p.bound.Load()); got != maxAppendBound {
			t.Errorf("bound after two hours of timed-out attempts = %v; want %v", got, maxAppendBound)
		}
		h.log.slow.Store(0)
		time.Sleep(maxAppendBound + time.Minute)
		synctest.Wait()
		if got := h.j.get(); !slices.Contains(got, "ack 1 multiple=true") {
			t.Errorf("not committed once the database was fast again: %v", got)
		}
		h.stop(t)
	})
}

// commitBatch pushes a batch of two events and waits (in the bubble's
// time, at most limit) for its ack, the tag of its last message.
func (h *harness) commitBatch(t *testing.T, ids [2]string, tag int, limit time.Duration) {
	t.Helper()
	h.q.push(body(t, ids[0]), body(t, ids[1]))
	ack := fmt.Sprintf("ack %d multiple=true", tag)
	for begin := time.Now(); !slices.Contains(h.j.get(), ack); time.Sleep(time.Second) {
		if time.Since(begin) > limit {
			t.Fatalf("%v not committed in %v: %v", ids, limit, h.j.get())
		}
	}
}

// timedOutAppends counts the attempts of the journal that a deadline
// ended while the database was slow.
func timedOutAppends(j *journal) int {
	n := 0
	for _, l := range j.get() {
		if strings.HasSuffix(l, "slow until context deadline exceeded") {
			n++
		}
	}
	return n
}

// TestSlowDatabaseIsLearnedOnce: a database that needs five minutes for
// every commit, append_timeout one minute. The first batch pays for
// finding that out: its attempts bounded by 1, 2 and 4 minutes time out,
// and the fourth, of 8, commits. The next batches must not pay again,
// each with three attempts that time out (seven minutes) and a retry:
// the learned bound outlives the commit, which took more than a quarter
// of it, so each later batch commits at its first attempt.
func TestSlowDatabaseIsLearnedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: time.Minute,
			HoldLimit: time.Hour, RetryMax: time.Second}, nil)
		h.log.slow.Store(int64(5 * time.Minute))
		h.commitBatch(t, [2]string{"a", "b"}, 2, time.Hour)
		if n := timedOutAppends(h.j); n != 3 {
			t.Errorf("%d attempts of the first batch timed out; want 3 (bounds of 1, 2 and 4 minutes)", n)
		}
		for i := range 3 {
			h.commitBatch(t, [2]string{fmt.Sprint("c", i), fmt.Sprint("d", i)}, 4+2*i, time.Hour)
		}
		if n := timedOutAppends(h.j); n != 3 {
			t.Errorf("%d attempts timed out in four batches of a database slow all along; want 3, all of the first batch (the bound learned once)", n)
		}
		if got := time.Duration(h.p.bound.Load()); got != 8*time.Minute {
			t.Errorf("bound after commits of 5 minutes = %v; want the 8 minutes learned", got)
		}
		h.stop(t)
	})
}

// TestLearnedBoundComesBackDown: the bound learned from a slow database
// stays while commits take more than a quarter of it, and each commit
// that takes less halves it, down to append_timeout, without an attempt
// timing out on the way: a database fast again gets its watchdog's stall
// limit (four times the bound) back in a few commits.
func TestLearnedBoundComesBackDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: time.Minute,
			HoldLimit: time.Hour, RetryMax: time.Second}, nil)
		h.log.slow.Store(int64(5 * time.Minute))
		h.commitBatch(t, [2]string{"a", "b"}, 2, time.Hour)
		h.log.slow.Store(int64(3 * time.Minute)) // over a quarter of 8
		h.commitBatch(t, [2]string{"c", "d"}, 4, time.Hour)
		if got := time.Duration(h.p.bound.Load()); got != 8*time.Minute {
			t.Errorf("bound after a commit of 3 minutes = %v; want 8m kept", got)
		}
		h.log.slow.Store(int64(10 * time.Second))
		var bounds []time.Duration
		for i := range 4 {
			h.commitBatch(t, [2]string{fmt.Sprint("e", i), fmt.Sprint("f", i)}, 6+2*i, time.Hour)
			bounds = append(bounds, time.Duration(h.p.bound.Load()))
		}
		if want := []time.Duration{4 * time.Minute, 2 * time.Minute, time.Minute, time.Minute}; !cmp.Equal(bounds, want) {
			t.Errorf("bounds after commits of 10 s = %v; want %v (halved down to append_timeout)", bounds, want)
		}
		if n := timedOutAppends(h.j); n != 3 {
			t.Errorf("%d attempts timed out; want the 3 of the first batch", n)
		}
		h.stop(t)
	})
}

// TestHangNoticedWithinAppendTimeoutUnderALearnedBound: with a bound of
// 8 minutes learned from a slow database, the database stops answering.
// The attempt in flight must not wait for its 8 minutes: once a ping
// goes unanswered for half append_timeout (pinged every half
// append_timeout), the attempt ends, within append_timeout of the hang,
// and the next attempts are bounded by append_timeout again. Once the
// database answers, the batch is committed.
func TestHangNoticedWithinAppendTimeoutUnderALearnedBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: time.Minute,
			HoldLimit: time.Hour, RetryMax: time.Second}, nil)
		h.log.slow.Store(int64(5 * time.Minute))
		h.commitBatch(t, [2]string{"a", "b"}, 2, time.Hour)
		if got := time.Duration(h.p.bound.Load()); got != 8*time.Minute {
			t.Errorf("bound after commits of 5 minutes = %v; want 8m: the test shows nothing", got)
			h.stop(t)
			return
		}
		before := len(h.j.get())
		h.log.hung.Store(true)
		h.q.push(body(t, "c"), body(t, "d"))
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		got := h.j.get()[before:]
		if len(got) == 0 || !strings.HasPrefix(got[0], "append 2 hung until") {
			t.Errorf("a minute (append_timeout) into the hang: %v; want the attempt ended", got)
		}
		if got := time.Duration(h.p.bound.Load()); got != time.Minute {
			t.Errorf("bound after an attempt the database did not answer = %v; want append_timeout (1m)", got)
		}
		if !h.p.Alive() {
			t.Error("not alive in the hang")
		}
		h.log.hung.Store(false)
		h.log.slow.Store(0)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if !slices.Contains(h.j.get(), "ack 4 multiple=true") {
			t.Errorf("not committed once the database answered: %v", h.j.get()[before:])
		}
		h.stop(t)
	})
}

// TestHoldLimitHandsTheBatchBackAndPauses: while the database hangs, a
// batch held for hold_limit is handed back to the queue (Pause), along
// with the next batch, read meanwhile (stale then, and never appended:
// committed ahead of the redelivery of the first, it would leave the
// order of publication). Paused, the persister takes nothing and tries no
// append, only checks that the database takes writes, for as long as the
// database hangs; it is alive, and causeway_persister_paused is 1. Once
// the database answers it resumes, and the redeliveries are committed,
// in order.
func TestHoldLimitHandsTheBatchBackAndPauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 10 * time.Second,
			HoldLimit: time.Minute, RetryMax: time.Second}, nil)
		h.log.hung.Store(true)
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"), body(t, "d"))
		time.Sleep(time.Minute - time.Second)
		synctest.Wait()
		if got := h.j.get(); slices.Contains(got, "pause") {
			t.Fatalf("paused before hold_limit: %v", got)
		}
		time.Sleep(15 * time.Second) // past hold_limit, and the attempt then in flight
		synctest.Wait()
		got := h.j.get()
		if len(got) == 0 || got[len(got)-1] != "pause" {
			t.Fatalf("journal past hold_limit = %v; want it to end with pause", got)
		}
		for _, l := range got[:len(got)-1] {
			if l != "append 2 hung until context deadline exceeded" {
				t.Fatalf("before the pause: %q in %v; want only attempts of the first batch that timed out", l, got)
			}
		}
		if v := gaugeValue(t, h.p.m.paused); v != 1 {
			t.Errorf("paused gauge = %v; want 1", v)
		}
		before := len(got)
		h.q.push(body(t, "e"))
		for range 60 { // ten minutes paused
			time.Sleep(10 * time.Second)
			if !h.p.Alive() {
				t.Fatal("not alive while paused")
			}
		}
		synctest.Wait()
		if got := h.j.get(); len(got) != before {
			t.Fatalf("while paused: %v; want nothing after the pause", got[before:])
		}
		if n := len(h.q.in); n != 1 {
			t.Errorf("%d messages taken by a paused persister; want none", 1-n)
		}

		h.log.hung.Store(false)
		// The check in flight ends at its timeout (append_timeout), the
		// next one, a backoff later, answers.
		time.Sleep(12 * time.Second)
		synctest.Wait()
		// The fake queue does not requeue: it hands out e, pushed while
		// paused (a broker would deliver a, b, c, d again first).
		got = append(got, "resume", "append 1: 1 new", "ack 5 multiple=true")
		checkJournal(t, h.j, got, []string{"publish 1..1"})
		// The redeliveries.
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"), body(t, "d"))
		time.Sleep(time.Second)
		synctest.Wait()
		checkJournal(t, h.j, append(got,
			"append 2: 2 new", "ack 7 multiple=true",
			"append 2: 2 new", "ack 9 multiple=true"),
			[]string{"publish 1..1", "publish 2..3", "publish 4..5"})
		if v := gaugeValue(t, h.p.m.paused); v != 0 {
			t.Errorf("paused gauge after resume = %v; want 0", v)
		}
		if v := counterValue(t, h.p.m.pauses); v != 1 {
			t.Errorf("pauses_total = %v; want 1", v)
		}
		h.stop(t)
	})
}

// TestHoldCountsFromDeliveryNotRead: messages delivered while the
// committer is busy wait in the client's buffer (the prefetch window),
// unread, and their age at the broker grows all the same. Here a, b, c,
// d, e and f are delivered at once; a and b (the first batch) cannot be
// committed for four minutes, c and d fill the next batch meanwhile, and
// e and f wait unread until the first batch commits. Then e and f's
// batch fails for good: it must be handed back by hold_limit (five
// minutes) after their delivery, not after their read, or with the
// longest attempts (ten minutes) the broker's consumer_timeout could
// close the channel first.
func TestHoldCountsFromDeliveryNotRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 10 * time.Second,
			HoldLimit: 5 * time.Minute, RetryMax: time.Second},
			func(entries []store.Entry) error {
				switch entries[0].Event.EventID {
				case "a":
					if time.Since(begin) < 4*time.Minute {
						return driver.ErrBadConn
					}
				case "e":
					return driver.ErrBadConn
				}
				return nil
			})
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"), body(t, "d"), body(t, "e"), body(t, "f"))
		time.Sleep(5*time.Minute - 2*time.Second)
		synctest.Wait()
		if got := h.j.get(); slices.Contains(got, "pause") {
			t.Errorf("paused before hold_limit: %v", got)
		}
		time.Sleep(4 * time.Second) // past hold_limit, and a backoff
		synctest.Wait()
		got := h.j.get()
		var acks []string
		for _, l := range got {
			if strings.HasPrefix(l, "ack") {
				acks = append(acks, l)
			}
		}
		if want := []string{"ack 2 multiple=true", "ack 4 multiple=true"}; !cmp.Equal(acks, want) {
			t.Errorf("acks %v; want %v (the first two batches committed)", acks, want)
		}
		if !slices.Contains(got, "pause") {
			t.Errorf("not paused %v after the delivery of a batch that cannot commit, hold_limit 5m (%d appends failed)",
				time.Since(begin), strings.Count(strings.Join(got, "\n"), "failed"))
		}
		h.stop(t)
	})
}

// windowQueue is a broker channel that delivers at most window unsettled
// messages, as a prefetch does: feed delivers the next message (into the
// client's buffer, Messages) each time an ack makes room. It is never
// paused in the test that uses it (a Pause is journaled).
type windowQueue struct {
	j       *journal
	window  int
	out     chan Message
	settled atomic.Int64 // the highest tag acked
	acked   chan struct{}
}

func newWindowQueue(j *journal, window int) *windowQueue {
	return &windowQueue{j: j, window: window, out: make(chan Message, window), acked: make(chan struct{}, 1)}
}

// feed delivers bodies one by one, each once fewer than window messages
// are unsettled.
func (q *windowQueue) feed(ctx context.Context, bodies [][]byte) {
	for i, b := range bodies {
		tag := i + 1
		for int64(tag-q.window) > q.settled.Load() {
			select {
			case <-q.acked:
			case <-ctx.Done():
				return
			}
		}
		q.out <- &windowMsg{q: q, tag: tag, body: b}
	}
}

func (q *windowQueue) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (q *windowQueue) Messages() <-chan Message      { return q.out }
func (q *windowQueue) Pause(context.Context) error {
	q.j.add("pause")
	return nil
}
func (q *windowQueue) Resume() { q.j.add("resume") }
func (q *windowQueue) DeadLetter(context.Context, Message, string) error {
	return errors.New("nothing to dead-letter here")
}

type windowMsg struct {
	q    *windowQueue
	tag  int
	body []byte
}

func (m *windowMsg) Body() []byte { return m.body }
func (m *windowMsg) Stale() bool  { return false }
func (m *windowMsg) Channel() any { return m.q }
func (m *windowMsg) Ack(multiple bool) error {
	m.q.settled.Store(int64(m.tag))
	select {
	case m.q.acked <- struct{}{}:
	default:
	}
	return nil
}

// TestBacklogIsNotTakenForAHold: a queue with a backlog is drained a
// batch a commit, the prefetch window always full, so the persister
// never finds the stream empty for half an hour; each message is still
// delivered only a few commits before it is read (the broker delivers
// one once an ack makes room in the window). A commit that fails once,
// past hold_limit into the backlog, is retried, not handed back: the
// batch is held for a few seconds, not since the backlog began.
func TestBacklogIsNotTakenForAHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		var failed atomic.Bool
		j := &journal{}
		q := newWindowQueue(j, 6)
		log := &fakeLog{j: j, fail: func([]store.Entry) error {
			if time.Since(begin) > 3*time.Minute && !failed.Swap(true) {
				return driver.ErrBadConn
			}
			return nil
		}}
		log.slow.Store(int64(time.Second))
		p, err := New(Config{BatchSize: 2, BatchWait: time.Millisecond, Prefetch: 6, AppendTimeout: 10 * time.Second,
			HoldLimit: 2 * time.Minute, RetryMax: time.Second}, Deps{Queue: q, Log: log, Sequencer: &fakeSequencer{j: j}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		const n = 600 // five minutes of one-second commits of two
		var bodies [][]byte
		for i := range n {
			bodies = append(bodies, body(t, fmt.Sprint("backlog-", i)))
		}
		go q.feed(ctx, bodies)
		for q.settled.Load() < n && time.Since(begin) < time.Hour {
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if !failed.Load() {
			t.Error("no commit failed: the test shows nothing")
		}
		if got := j.get(); slices.Contains(got, "pause") {
			t.Errorf("paused while draining a backlog, %d of %d messages acked", q.settled.Load(), n)
		}
		if got := q.settled.Load(); got != n {
			t.Errorf("%d of %d messages acked", got, n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestHoldAfterResumeCountsFromTheResume: while paused, the persister
// reads nothing, the next batch in hand (stale) waiting for the
// committer; the messages of the channel opened by the resume were
// delivered after it, however long the pause. A commit of theirs that
// fails once is retried, not handed back at once as held since before
// the pause.
func TestHoldAfterResumeCountsFromTheResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failE atomic.Bool
		failE.Store(true)
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 10 * time.Second,
			HoldLimit: time.Minute, RetryMax: time.Second},
			func(entries []store.Entry) error {
				if entries[0].Event.EventID == "e" && failE.Swap(false) {
					return driver.ErrBadConn
				}
				return nil
			})
		h.log.hung.Store(true)
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"), body(t, "d"))
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if got := h.j.get(); !slices.Contains(got, "pause") {
			t.Fatalf("not paused past hold_limit: %v", got)
		}
		h.q.push(body(t, "e"), body(t, "f")) // delivered once consuming resumes
		time.Sleep(10 * time.Minute)
		h.log.hung.Store(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		got := h.j.get()
		if n := strings.Count(strings.Join(got, "\n"), "pause"); n != 1 {
			t.Errorf("%d pauses; want 1 (the batch after the resume retried, not handed back): %v", n, got)
		}
		if !slices.Contains(got, "ack 6 multiple=true") {
			t.Errorf("e and f not committed after the resume: %v", got)
		}
		h.stop(t)
	})
}

// TestPausedUntilTheDatabaseTakesWrites: a database that answers pings
// but refuses every write (read-only). Past hold_limit the batch is
// handed back, and the persister stays paused for as long as writes are
// refused: resumed on the ping, it would take the batch again and hand
// it back a hold limit later, a redelivery of each message every
// hold_limit. Once the database takes writes it resumes.
func TestPausedUntilTheDatabaseTakesWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 10 * time.Second,
			HoldLimit: time.Minute, RetryMax: time.Second}, nil)
		h.log.refuse.Store(true)
		h.q.push(body(t, "a"), body(t, "b"))
		time.Sleep(time.Minute + 2*time.Second)
		synctest.Wait()
		got := h.j.get()
		if len(got) == 0 || got[len(got)-1] != "pause" {
			t.Fatalf("journal past hold_limit = %v; want it to end with pause", got)
		}
		before := len(got)
		h.q.push(body(t, "a"), body(t, "b")) // the redeliveries
		for range 60 {                       // an hour
			time.Sleep(time.Minute)
			if !h.p.Alive() {
				t.Fatal("not alive while paused")
			}
		}
		synctest.Wait()
		if got := h.j.get(); len(got) != before {
			t.Fatalf("while writes are refused: %v after the pause; want nothing (paused)", got[before:])
		}
		if v := counterValue(t, h.p.m.pauses); v != 1 {
			t.Errorf("pauses_total = %v after an hour of refused writes; want 1", v)
		}
		h.log.refuse.Store(false)
		time.Sleep(2 * time.Second) // a backoff (RetryMax) later
		synctest.Wait()
		checkJournal(t, h.j, append(got, "resume", "append 2: 2 new", "ack 4 multiple=true"), []string{"publish 1..2"})
		h.stop(t)
	})
}

// TestShutdownWhilePaused: a persister paused for its database stops at
// once on shutdown: it holds nothing to commit.
func TestShutdownWhilePaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: time.Second,
			HoldLimit: 2 * time.Second, ShutdownGrace: time.Hour}, nil)
		h.log.hung.Store(true)
		h.q.push(body(t, "a"), body(t, "b"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := h.j.get(); !slices.Contains(got, "pause") {
			t.Fatalf("not paused: %v", got)
		}
		start := time.Now()
		h.stop(t)
		if took := time.Since(start); took > time.Minute {
			t.Errorf("stopping a paused persister took %v; want at once", took)
		}
	})
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func TestShutdownCommitsBatchInFlightThenStopsQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 100, BatchWait: time.Minute}, nil)
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"))
		synctest.Wait()
		if got := h.j.get(); len(got) != 0 {
			t.Fatalf("committed before the batch was full or due: %v", got)
		}
		h.stop(t)
		checkJournal(t, h.j, []string{"append 3: 3 new", "ack 3 multiple=true", "queue stopped"}, []string{"publish 1..3"})
	})
}

func TestShutdownGraceGivesUpWithoutAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 1, BatchWait: time.Millisecond, ShutdownGrace: 3 * time.Second},
			func([]store.Entry) error { return driver.ErrBadConn })
		h.q.push(body(t, "a"))
		synctest.Wait()
		began := time.Now()
		h.stop(t)
		if took := time.Since(began); took < 3*time.Second || took > 4*time.Second {
			t.Errorf("Run returned %v after cancel; want about the 3s grace", took)
		}
		for _, l := range h.j.get() {
			if strings.HasPrefix(l, "ack") || strings.HasPrefix(l, "publish") {
				t.Fatalf("acked or published an uncommitted batch: %v", h.j.get())
			}
		}
	})
}

func TestRejectedEventIsDeadLetteredAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 3, BatchWait: time.Millisecond}, func(es []store.Entry) error {
			for _, e := range es {
				if e.Event.EventID == "bad" {
					return &mysql.MySQLError{Number: 1406, Message: "Data too long"}
				}
			}
			return nil
		})
		h.q.push(body(t, "a"), body(t, "bad"), body(t, "c"))
		synctest.Wait()
		checkJournal(t, h.j, []string{
			"append 3 failed",
			"append 1: 1 new", "ack 1 multiple=true",
			"append 1 failed", "dead-letter 2 rejected",
			"append 1: 1 new", "ack 3 multiple=true",
		}, []string{"publish 1..1", "publish 2..2"})
		h.stop(t)
	})
}

// TestFailedDeadLetterIsNeverAckedByALaterBatch checks that a message
// whose dead-letter failed on a channel not seen closed stays unacked for
// good (the broker redelivers it when the channel closes): no multiple ack
// of a later batch covers it, whether it was refused by the decoder or,
// alone, by the database.
func TestFailedDeadLetterIsNeverAckedByALaterBatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first []byte
		want  []string
	}{
		{"malformed", []byte("not json"), []string{"dead-letter 1 failed"}},
		{"rejected alone", nil, []string{"append 1 failed", "dead-letter 1 failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond}, func(es []store.Entry) error {
					if es[0].Event.EventID == "bad" {
						return &mysql.MySQLError{Number: 1406, Message: "Data too long"}
					}
					return nil
				})
				h.q.dlFails = errors.New("publish: channel blocked; reject: connection reset")
				first := tc.first
				if first == nil {
					first = body(t, "bad")
				}
				// Each push is a batch of its own: the batch wait passes
				// before the next.
				for _, bodies := range [][][]byte{{first}, {body(t, "a"), body(t, "b")}, {body(t, "c"), body(t, "d")}} {
					h.q.push(bodies...)
					time.Sleep(time.Second)
					synctest.Wait()
				}
				checkJournal(t, h.j, append(tc.want,
					"append 2: 2 new", "ack 2 multiple=false", "ack 3 multiple=false",
					"append 2: 2 new", "ack 4 multiple=false", "ack 5 multiple=false",
				), []string{"publish 1..2", "publish 3..4"})
				h.stop(t)
			})
		})
	}
}

// TestOnlyTheHoledChannelAcksOneByOne checks that the acks go one by one
// only on the channel where a dead-letter failed: a new channel (after a
// reconnect), whose multiple ack cannot cover the old one's messages, acks
// batches whole again.
func TestOnlyTheHoledChannelAcksOneByOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond}, nil)
		h.q.dlFails = errors.New("publish: channel blocked; reject: connection reset")
		for _, ms := range [][]*fakeMsg{
			{{tag: 1, body: []byte("not json"), ch: 1}},
			{{tag: 2, body: body(t, "a"), ch: 1}, {tag: 3, body: body(t, "b"), ch: 1}},
			{{tag: 1, body: body(t, "c"), ch: 2}, {tag: 2, body: body(t, "d"), ch: 2}},
		} {
			for _, m := range ms {
				m.j = h.j
				h.q.in <- m
			}
			time.Sleep(time.Second)
			synctest.Wait()
		}
		checkJournal(t, h.j, []string{"dead-letter 1 failed",
			"append 2: 2 new", "ack 2 multiple=false", "ack 3 multiple=false",
			"append 2: 2 new", "ack 2 multiple=true"},
			[]string{"publish 1..2", "publish 3..4"})
		h.stop(t)
	})
}

// TestHoledChannelsAreForgotten: the channels on which a dead-letter
// failed are remembered while they may still take acks, not for ever: a
// persister whose broker connection keeps failing along with its
// dead-letters (each reconnect a new channel) would otherwise keep every
// closed channel, and the connection it belonged to, for the life of the
// process. The new channel's acks still go one by one.
func TestHoledChannelsAreForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond}, nil)
		h.q.dlFails = errors.New("publish: connection reset; reject: connection reset")
		const channels = 50
		for ch := 1; ch <= channels; ch++ {
			h.q.in <- &fakeMsg{tag: 1, body: []byte("not json"), ch: ch, j: h.j}
			synctest.Wait()
		}
		h.q.in <- &fakeMsg{tag: 2, body: body(t, "a"), ch: channels, j: h.j}
		time.Sleep(time.Second)
		synctest.Wait()
		holed := 0
		h.p.holed.Range(func(any, any) bool { holed++; return true })
		if holed > 1 {
			t.Errorf("%d channels remembered as holed after %d reconnects; want the current one only", holed, channels-1)
		}
		if got, _ := h.j.split(); got[len(got)-1] != "ack 2 multiple=false" {
			t.Errorf("journal ends %q; want the holed channel's single ack", got[len(got)-1])
		}
		h.stop(t)
	})
}

// TestSingleAckFailureLeavesTheOthersAcked checks that, acking one by one,
// a failed ack (on a channel closed since, or not seen closed) does not
// leave the rest of the batch unacked.
func TestSingleAckFailureLeavesTheOthersAcked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 3, BatchWait: time.Millisecond}, nil)
		h.q.dlFails = errors.New("publish: channel blocked; reject: connection reset")
		h.q.push([]byte("not json"))
		time.Sleep(time.Second)
		synctest.Wait()
		for i, id := range []string{"a", "b", "c"} {
			m := &fakeMsg{tag: 2 + i, body: body(t, id), j: h.j}
			switch id {
			case "a": // of a channel closed since
				m.ackFails = fmt.Errorf("%w: channel closed", ErrStale)
			case "b":
				m.ackFails = errors.New("frame not sent")
			}
			h.q.in <- m
		}
		time.Sleep(time.Second)
		synctest.Wait()
		checkJournal(t, h.j, []string{"dead-letter 1 failed", "append 3: 3 new", "ack 2 failed", "ack 3 failed", "ack 4 multiple=false"},
			[]string{"publish 1..3"})
		h.stop(t)
	})
}

func TestDuplicatesAreAckedCountedNotPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond}, nil)
		h.q.push(body(t, "a"), body(t, "b"))
		synctest.Wait()
		h.q.push(body(t, "a"), body(t, "b"))
		synctest.Wait()
		h.q.push(body(t, "a"), body(t, "c"))
		synctest.Wait()
		h.stop(t)
		checkJournal(t, h.j, []string{
			"append 2: 2 new", "ack 2 multiple=true",
			"append 2: 0 new", "ack 4 multiple=true",
			"append 2: 1 new", "ack 6 multiple=true",
			"queue stopped",
		}, []string{"publish 1..2", "publish 3..3"})
		if got := counterValue(t, h.p.m.duplicates); got != 3 {
			t.Errorf("duplicates = %v; want 3", got)
		}
	})
}

func TestPublishFailureDoesNotStopTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 1, BatchWait: time.Millisecond}, nil)
		h.seqr.fail = true
		h.q.push(body(t, "a"), body(t, "b"))
		synctest.Wait()
		h.stop(t)
		checkJournal(t, h.j, []string{"append 1: 1 new", "ack 1 multiple=true", "append 1: 1 new", "ack 2 multiple=true", "queue stopped"}, nil)
		if got := counterValue(t, h.p.m.unpublished); got != 2 {
			t.Errorf("unpublished = %v; want 2", got)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"batch", Config{BatchSize: -1}, "batch_size"},
		{"prefetch", Config{BatchSize: 500, Prefetch: 100}, "prefetch"},
		{"retention", Config{Retention: time.Hour}, "retention"},
		{"lookahead", Config{PartitionLookahead: -1}, "partition_lookahead"},
		{"retry", Config{RetryMin: time.Second, RetryMax: time.Millisecond}, "retry_max"},
		{"maintenance", Config{MaintenanceInterval: time.Second}, "maintenance_interval"},
		{"append timeout short", Config{AppendTimeout: 100 * time.Millisecond}, "append_timeout"},
		{"append timeout long", Config{AppendTimeout: time.Hour}, "append_timeout"},
		{"hold limit under append timeout", Config{AppendTimeout: time.Minute, HoldLimit: 30 * time.Second}, "hold_limit"},
		{"hold limit long", Config{HoldLimit: 25 * time.Hour}, "hold_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v; want an error naming %s", err, tc.want)
			}
		})
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestAliveWhileAppending: a persister is stuck only when one Append
// attempt has been in flight for longer than its stall limit: two minutes
// with the default append_timeout, four times a longer one; idle, or
// appending for less, it is alive.
func TestAliveWhileAppending(t *testing.T) {
	for _, tc := range []struct {
		appendTimeout, limit time.Duration
	}{
		{0, 2 * time.Minute},
		{5 * time.Minute, 20 * time.Minute},
	} {
		t.Run(fmt.Sprint(tc.appendTimeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				j := &journal{}
				p, err := New(Config{AppendTimeout: tc.appendTimeout}, Deps{Queue: newFakeQueue(j), Log: &fakeLog{j: j}, Sequencer: &fakeSequencer{j: j}})
				if err != nil {
					t.Fatal(err)
				}
				if !p.Alive() {
					t.Error("an idle persister is not alive")
				}
				time.Sleep(tc.limit + time.Second) // idle that long is not stuck
				end := p.appending.Begin()
				if !p.Alive() {
					t.Error("a persister that just began an Append is not alive")
				}
				time.Sleep(tc.limit - time.Second)
				if !p.Alive() {
					t.Errorf("a persister whose Append has run for %v, short of the stall limit, is not alive", tc.limit-time.Second)
				}
				time.Sleep(2 * time.Second)
				if p.Alive() {
					t.Errorf("a persister whose Append has run past the stall limit %v is alive", tc.limit)
				}
				end()
				if !p.Alive() {
					t.Error("a persister whose Append ended is not alive")
				}
			})
		})
	}
}

// TestRefusedPingsAreNoAnswer: under a bound of 8 minutes learned from a
// slow database, an attempt hangs while the database, answering its
// first ping, then refuses every connection (its host went down under
// the attempt). The pings that fail at once are no sign of a hang, but
// no answer either: the attempt that times out met a database that did
// not answer at the end, not a slow one, and the next bound is
// append_timeout, not twice the learned one.
func TestRefusedPingsAreNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: time.Minute,
			HoldLimit: time.Hour, RetryMax: time.Second}, nil)
		h.log.slow.Store(int64(5 * time.Minute))
		h.commitBatch(t, [2]string{"a", "b"}, 2, time.Hour)
		if got := time.Duration(h.p.bound.Load()); got != 8*time.Minute {
			t.Fatalf("bound after commits of 5 minutes = %v; want 8m: the test shows nothing", got)
		}
		before := len(h.j.get())
		h.log.slow.Store(int64(time.Hour)) // the append waits for its bound
		h.q.push(body(t, "c"), body(t, "d"))
		time.Sleep(45 * time.Second) // the first ping, at 30 s, answered
		h.log.pingRefused.Store(true)
		time.Sleep(8*time.Minute - 45*time.Second + 5*time.Second)
		synctest.Wait()
		got := h.j.get()[before:]
		if len(got) != 1 || got[0] != "append 2 slow until context deadline exceeded" {
			t.Fatalf("8 minutes into the attempt: %v; want the one attempt ended by its bound", got)
		}
		if got := time.Duration(h.p.bound.Load()); got != time.Minute {
			t.Errorf("bound after an attempt whose last pings were refused = %v; want append_timeout (1m)", got)
		}
		h.log.slow.Store(0)
		h.log.pingRefused.Store(false)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if !slices.Contains(h.j.get(), "ack 4 multiple=true") {
			t.Errorf("not committed once the database answered: %v", h.j.get()[before:])
		}
		h.stop(t)
	})
}

// TestHoldCountsFromDeliveryAcrossHandOffs: as in
// TestHoldCountsFromDeliveryNotRead, a..h are delivered at once, a and b
// cannot be committed for four minutes, and the rest waits in the
// client's buffer meanwhile; but here each message takes a moment to
// pass between the client's goroutines, as it does in bus.Consumer and
// BusQueue, so the persister, reading them after the commit, finds the
// stream empty between two of them although the next waits. That moment
// says nothing of when the next was delivered: g and h, whose batch
// fails for good, must still be handed back by hold_limit (five minutes)
// after their delivery, not five minutes after the first hand-off gap
// met once a and b committed.
func TestHoldCountsFromDeliveryAcrossHandOffs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		j := &journal{}
		q := newFakeQueue(j)
		q.handoff = time.Microsecond
		log := &fakeLog{j: j, fail: func(entries []store.Entry) error {
			switch entries[0].Event.EventID {
			case "a":
				if time.Since(begin) < 4*time.Minute {
					return driver.ErrBadConn
				}
			case "g":
				return driver.ErrBadConn
			}
			return nil
		}}
		p, err := New(Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 10 * time.Second,
			HoldLimit: 5 * time.Minute, RetryMax: time.Second}, Deps{Queue: q, Log: log, Sequencer: &fakeSequencer{j: j}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
			q.push(body(t, id))
		}
		time.Sleep(5*time.Minute + 5*time.Second) // past hold_limit, and a backoff
		synctest.Wait()
		got := j.get()
		var acks []string
		for _, l := range got {
			if strings.HasPrefix(l, "ack") {
				acks = append(acks, l)
			}
		}
		if want := []string{"ack 2 multiple=true", "ack 4 multiple=true", "ack 6 multiple=true"}; !cmp.Equal(acks, want) {
			t.Errorf("acks %v; want %v (the first three batches committed)", acks, want)
		}
		if !slices.Contains(got, "pause") {
			t.Errorf("not paused %v after the delivery of a batch that cannot commit, hold_limit 5m (%d appends failed)",
				time.Since(begin), strings.Count(strings.Join(got, "\n"), "failed"))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestHoldAfterReconnectCountsFromTheNewChannel: the broker connection
// is lost and comes back while the persister reads nothing (its next
// batch full, the committer busy with a slow commit), so it never waits
// on an empty stream from its start until it reads the new channel's
// delivery. That was delivered after the channel opened, not since the
// persister started: a commit of it that fails once is retried, not
// handed back at once as held for longer than hold_limit.
func TestHoldAfterReconnectCountsFromTheNewChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failE atomic.Bool
		failE.Store(true)
		h := start(t, Config{BatchSize: 1, BatchWait: time.Millisecond, AppendTimeout: time.Minute,
			HoldLimit: time.Minute, RetryMax: time.Second},
			func(entries []store.Entry) error {
				if entries[0].Event.EventID == "e" && failE.Swap(false) {
					return driver.ErrBadConn
				}
				return nil
			})
		h.log.slow.Store(int64(50 * time.Second))
		// Channel 1: a commits in 50 s, b in the next 50 s; c fills the
		// batch in hand meanwhile.
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"))
		time.Sleep(55 * time.Second)
		h.log.slow.Store(0) // the commits after b's are fast
		// The reconnect: channel 2 opens, and delivers e.
		opened := time.Now()
		h.q.next++
		h.q.in <- &fakeMsg{tag: h.q.next, body: body(t, "e"), j: h.j, ch: 2, opened: opened}
		time.Sleep(time.Minute)
		synctest.Wait()
		got := h.j.get()
		if slices.Contains(got, "pause") {
			t.Errorf("paused: e, delivered %v ago, taken for held since the start: %v", time.Since(opened), got)
		}
		if !slices.Contains(got, "ack 4 multiple=true") {
			t.Errorf("e not committed: %v", got)
		}
		h.stop(t)
	})
}

// TestSubscriptionStoredAsTheBusCarriesIt: a subscription's spec is raw
// JSON whose bytes the processors keep (registry, node state, outbox
// rows). Stored as sent, with its spaces, it was compacted on the bus
// (the sequenced batch re-encodes the event), so a follower that read
// the record from the database and one that read it from the bus held
// different bytes for one log. The log stores the re-encoded event;
// other events are stored as sent.
func TestSubscriptionStoredAsTheBusCarriesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond}, nil)
		sub := []byte(`{"v":1,"event_id":"s1","source":"api","kind":"subscription.put","observed_at":"2026-11-22T05:00:00Z",` +
			`"subscription":{"id":"pager","spec":{ "url" : "http://pager.example/hook",  "filter": {"severities": ["critical"]} }}}`)
		tick := body(t, "t1")
		h.q.push(sub, tick)
		synctest.Wait()
		h.stop(t)
		h.log.mu.Lock()
		defer h.log.mu.Unlock()
		stored, ok := h.log.bodies["s1"]
		if !ok {
			t.Fatalf("the subscription was not appended: %v", h.j)
		}
		ev, err := event.DecodeStored(stored)
		if err != nil {
			t.Fatal(err)
		}
		// What a follower of the bus reads: the record the batch carries.
		rec, err := event.EncodeRecord(event.Record{Seq: 1, RecordedAt: time.Now(), Event: ev})
		if err != nil {
			t.Fatal(err)
		}
		onBus, err := event.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(ev.Subscription.Spec), string(onBus.Event.Subscription.Spec); got != want {
			t.Errorf("spec as stored %s; as the bus carries it %s", got, want)
		}
		if want := `{"url":"http://pager.example/hook","filter":{"severities":["critical"]}}`; string(ev.Subscription.Spec) != want {
			t.Errorf("spec as stored %s; want %s", ev.Subscription.Spec, want)
		}
		if !bytes.Equal(h.log.bodies["t1"], tick) {
			t.Errorf("a tick was stored as %s; want it as sent, %s", h.log.bodies["t1"], tick)
		}
	})
}
