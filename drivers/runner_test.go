package drivers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/internal/event"
)

// fakePublisher records published events; it fails while fail > 0.
type fakePublisher struct {
	mu    sync.Mutex
	evs   []event.Event
	calls int
	fail  int
}

var errSpoolFull = errors.New("spool full")

func (p *fakePublisher) Publish(_ context.Context, evs ...event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail > 0 {
		p.fail--
		return errSpoolFull
	}
	for i, ev := range evs { // as bus.Publisher does: nothing spooled unless all encode
		if _, err := event.Encode(ev); err != nil {
			return fmt.Errorf("publish: %w", &event.ItemError{Index: i, EventID: ev.EventID, Err: err})
		}
	}
	p.evs = append(p.evs, evs...)
	return nil
}

func (p *fakePublisher) events() []event.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.evs...)
}

type fakeDriver struct {
	name string
	mu   sync.Mutex
	ents []event.Entity
	errs int
	gets int
	// pub, when set, is read at each GetAll: the events published by then.
	pub         *fakePublisher
	publishedAt []int
	readAt      []time.Time
	readTakes   time.Duration // how long a read lasts
	// watch, when set, is the channel whose receives make Watch call changed.
	watch chan struct{}
}

func (d *fakeDriver) Name() string { return d.name }

func (d *fakeDriver) GetAll(context.Context) ([]event.Entity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gets++
	if d.pub != nil {
		d.publishedAt = append(d.publishedAt, len(d.pub.events()))
		d.readAt = append(d.readAt, time.Now())
	}
	time.Sleep(d.readTakes)
	if d.errs > 0 {
		d.errs--
		return nil, errors.New("source unreachable")
	}
	return append([]event.Entity(nil), d.ents...), nil
}

func (d *fakeDriver) set(ents ...event.Entity) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ents = ents
}

type watchingDriver struct{ *fakeDriver }

func (d watchingDriver) Watch(ctx context.Context, changed func()) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.watch:
			changed()
		}
	}
}

func host(id, state string) event.Entity {
	return event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: id, State: state}
}

// syncs splits published events into pulls and checks their framing.
func syncs(t *testing.T, evs []event.Event) [][]event.Event {
	t.Helper()
	var out [][]event.Event
	var cur []event.Event
	for _, ev := range evs {
		switch ev.Kind {
		case event.KindSyncBegin:
			if cur != nil {
				t.Fatalf("sync.begin inside an open sync")
			}
			cur = []event.Event{ev}
		case event.KindSyncEnd:
			if cur == nil || cur[0].Sync.ID != ev.Sync.ID {
				t.Fatalf("sync.end %s without its begin", ev.Sync.ID)
			}
			out = append(out, append(cur, ev))
			cur = nil
		default:
			if cur == nil {
				t.Fatalf("%s outside a sync", ev.Kind)
			}
			cur = append(cur, ev)
		}
	}
	if cur != nil {
		t.Fatalf("sync %s not ended", cur[0].Sync.ID)
	}
	return out
}

func ids(evs []event.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.EventID)
	}
	return out
}

// startRunner starts a runner of jobs (in the test's bubble); stop ends it
// and returns what Run returned.
func startRunner(t *testing.T, jobs []Job, deps Deps) (r *Runner, stop func() error) {
	t.Helper()
	r, err := New(jobs, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return r, func() error { cancel(); return <-done }
}

func TestRunnerScheduleAndDedup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		drv := &fakeDriver{name: "nova", ents: []event.Entity{host("c1", "up")}}
		reg := prometheus.NewPedanticRegistry()
		r, stop := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Minute}}}, Deps{Publisher: pub, Registerer: reg})
		synctest.Wait()
		first := syncs(t, pub.events())
		if len(first) != 1 || len(first[0]) != 3 {
			t.Fatalf("after start: %d pulls, want 1 of 3 events", len(first))
		}
		// Next slot: a new pull, a new sync id although the content is the same.
		time.Sleep(time.Minute)
		synctest.Wait()
		all := syncs(t, pub.events())
		if len(all) != 2 || all[1][0].Sync.ID == all[0][0].Sync.ID {
			t.Fatalf("after one interval: %d pulls (sync ids must differ)", len(all))
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := value(t, r.pulls.WithLabelValues("nova", ResultOK)); got != 2 {
			t.Errorf("pulls ok = %v, want 2", got)
		}
		if got := value(t, r.entities.WithLabelValues("nova")); got != 1 {
			t.Errorf("entities = %v, want 1", got)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var seen int
		for _, mf := range mfs {
			if mf.GetName() == "causeway_driver_pull_seconds" {
				seen = int(mf.GetMetric()[0].GetHistogram().GetSampleCount())
			}
		}
		if seen != 2 {
			t.Errorf("pull_seconds samples = %d, want 2", seen)
		}

		// A restarted process in the same slot with the same content
		// publishes the same ids: the log dedups them.
		pub2 := &fakePublisher{}
		_, stop2 := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Minute}}}, Deps{Publisher: pub2})
		synctest.Wait()
		if err := stop2(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if diff := cmp.Diff(ids(all[1]), ids(pub2.events())); diff != "" {
			t.Errorf("re-published pull has other ids:\n%s", diff)
		}
	})
}

func TestRunnerBackoffUntilPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{fail: 3}
		drv := &fakeDriver{name: "am", errs: 2, ents: []event.Entity{host("c1", "up"), host("c2", "up")}}
		start := time.Now()
		r, stop := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Hour, BackoffMin: time.Second, BackoffMax: 4 * time.Second, BatchSize: 1}}}, Deps{Publisher: pub})
		synctest.Wait()
		if n := len(pub.events()); n != 0 {
			t.Fatalf("published %d events while failing", n)
		}
		// Backoff 1s, 2s, 4s (the begin's publish errors), then 4s, 4s
		// (get errors; the begin, published once, waits for its pull).
		time.Sleep(15*time.Second - time.Since(start) - time.Millisecond)
		synctest.Wait()
		if evs := pub.events(); len(evs) != 1 || evs[0].Kind != event.KindSyncBegin {
			t.Fatalf("before the backoff ran out: published %v; want the sync.begin alone", ids(evs))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		got := syncs(t, pub.events())
		if len(got) != 1 || len(got[0]) != 4 {
			t.Fatalf("after backoff: %d pulls, want one complete pull", len(got))
		}
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if e, p, o := value(t, r.pulls.WithLabelValues("am", ResultError)),
			value(t, r.pulls.WithLabelValues("am", ResultPublishError)),
			value(t, r.pulls.WithLabelValues("am", ResultOK)); e != 2 || p != 3 || o != 1 {
			t.Errorf("pulls error/publish_error/ok = %v/%v/%v, want 2/3/1", e, p, o)
		}
	})
}

func TestRunnerWatchTriggersPull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		drv := watchingDriver{&fakeDriver{name: "static", watch: make(chan struct{}), ents: []event.Entity{host("c1", "up")}}}
		_, stop := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Hour}}}, Deps{Publisher: pub})
		synctest.Wait()
		drv.set(host("c1", "down"))
		time.Sleep(time.Second)
		drv.watch <- struct{}{}
		synctest.Wait()
		got := syncs(t, pub.events())
		if len(got) != 2 || got[1][1].Entity.State != "down" {
			t.Fatalf("after a change: %d pulls, want 2 with the new state", len(got))
		}
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

type changesDriver struct {
	*fakeDriver
	n int
}

func (d *changesDriver) GetChanges(context.Context) ([]event.Event, error) {
	d.n++
	return []event.Event{{V: 1, EventID: fmt.Sprintf("chg-%d", d.n), Source: d.name, Kind: event.KindEntityUpsert,
		ObservedAt: time.Now(), Entity: &event.Entity{Category: "RESOURCE", Type: "nova.host", ID: "c1", State: "x"}}}, nil
}

func TestRunnerChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		drv := &changesDriver{fakeDriver: &fakeDriver{name: "nova"}}
		_, stop := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Minute, ChangesInterval: 15 * time.Second}}}, Deps{Publisher: pub})
		synctest.Wait()
		time.Sleep(50 * time.Second)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		var changes int
		for _, ev := range pub.events() {
			if strings.HasPrefix(ev.EventID, "chg-") {
				changes++
			}
		}
		if changes != 3 {
			t.Errorf("%d change pulls in 50s at 15s, want 3", changes)
		}
	})
}

func TestNewRefusesBadJobs(t *testing.T) {
	_, err := New([]Job{
		{Driver: &fakeDriver{name: "a"}, Schedule: Schedule{Interval: -1, Jitter: 2}},
		{Driver: &fakeDriver{name: "a"}},
	}, Deps{Publisher: &fakePublisher{}})
	for _, want := range []string{"a: interval: must not be negative", "jitter: must be between 0 and 1", `driver name "a" is used twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want %q", err, want)
		}
	}
	if _, err := New(nil, Deps{}); err == nil {
		t.Error("New without a Publisher succeeded")
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// TestRunnerLeavesOutWhatDoesNotEncode: an entity whose event is over the
// size limit once encoded is refused for good by the publisher; the
// runner leaves it out (logged, counted) and publishes the rest of the
// pull, instead of retrying the whole pull for ever.
func TestRunnerLeavesOutWhatDoesNotEncode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		big := host("c2", "up")
		big.Properties = map[string]string{"annotation": strings.Repeat("x", event.MaxEventBytes)}
		drv := &fakeDriver{name: "am", ents: []event.Entity{host("c1", "up"), big, host("c3", "up")}}
		r, stop := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Hour, BackoffMin: time.Second, BackoffMax: 4 * time.Second}}}, Deps{Publisher: pub})
		synctest.Wait()
		got := syncs(t, pub.events())
		if len(got) != 1 || len(got[0]) != 4 {
			t.Fatalf("%d pulls published (%v); want one: begin, c1, c3, end", len(got), ids(pub.events()))
		}
		for _, ev := range got[0] {
			if ev.Entity != nil && ev.Entity.ID == "c2" {
				t.Errorf("the oversized entity was published")
			}
		}
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if v := value(t, r.refused.WithLabelValues("am")); v != 1 {
			t.Errorf("refused = %v; want 1", v)
		}
		if o := value(t, r.pulls.WithLabelValues("am", ResultOK)); o != 1 {
			t.Errorf("ok pulls = %v; want 1", o)
		}
	})
}

// TestRunnerBeginsBeforeReading: a pull's sync.begin is published before
// the source is read, so that what another path reports for the same
// source meanwhile lands after the begin in the log (and survives the
// pull's end); the begin of a slot is published once, whatever the
// retries.
func TestRunnerBeginsBeforeReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		drv := &fakeDriver{name: "am", errs: 1, pub: pub, readTakes: 2 * time.Second, ents: []event.Entity{host("c1", "up")}}
		_, stop := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Minute, BackoffMin: time.Second}}}, Deps{Publisher: pub})
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		drv.mu.Lock()
		defer drv.mu.Unlock()
		if diff := cmp.Diff([]int{1, 1}, drv.publishedAt); diff != "" {
			t.Errorf("events published when the source was read (-want +got):\n%s", diff)
		}
		got := syncs(t, pub.events())
		if len(got) != 1 || len(got[0]) != 3 {
			t.Fatalf("published %v; want one pull of 3 events", ids(pub.events()))
		}
		// What the read reported is observed when the read started: a
		// report another path makes during the read is newer.
		for _, ev := range got[0][1:] {
			if !ev.ObservedAt.Equal(drv.readAt[1]) {
				t.Errorf("%s observed at %v; want the start of its read, %v", ev.Kind, ev.ObservedAt, drv.readAt[1])
			}
		}
	})
}

// TestRunnerSkipsMissedSlots: after an hour of failed reads, the runner
// pulls the current slot, not every slot it missed one after the other.
func TestRunnerSkipsMissedSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{}
		drv := &fakeDriver{name: "am", errs: 1 << 30, ents: []event.Entity{host("c1", "up")}}
		_, stop := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Minute, BackoffMin: time.Second, BackoffMax: time.Minute}}}, Deps{Publisher: pub})
		time.Sleep(time.Hour)
		synctest.Wait()
		drv.mu.Lock()
		drv.errs = 0
		drv.mu.Unlock()
		time.Sleep(61 * time.Second)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := len(syncs(t, pub.events())); n < 1 || n > 2 {
			t.Errorf("%d full pulls in the minute after the source came back; want 1 or 2", n)
		}
	})
}
