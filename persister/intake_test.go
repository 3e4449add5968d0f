package persister

import (
	"testing"
	"testing/synctest"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/internal/event"
)

// publishedMsg is a fakeMsg the producer spooled at published (the AMQP
// timestamp bus.Delivery.PublishedAt reads).
type publishedMsg struct {
	*fakeMsg
	published time.Time
}

func (m publishedMsg) PublishedAt() time.Time { return m.published }

func histogramOf(t *testing.T, h interface{ Write(*dto.Metric) error }) *dto.Histogram {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram()
}

// TestIntakeDelayIsNotTheSourcesDating: the README told operators that
// causeway_persister_lag_seconds rising means the broker or the database
// is not keeping up. It is recorded_at minus observed_at, and sources
// date events in the past on purpose: an Alertmanager webhook by the
// alert's startsAt, so an alert re-notified four hours after it started
// (its annotations changed) counts four hours of "lag" through a pipeline
// that took two seconds. The wait that says accepted events are held in
// spools and queues is causeway_persister_intake_delay_seconds:
// recorded_at minus the time the producer spooled the event.
func TestIntakeDelayIsNotTheSourcesDating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{BatchSize: 1, BatchWait: time.Millisecond}, nil)
		now := time.Now()
		b, err := event.Encode(event.Event{V: event.Version, EventID: "renotified", Source: "alertmanager", Kind: event.KindTick,
			ObservedAt: now.Add(-4 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		h.q.next++
		h.q.in <- publishedMsg{fakeMsg: &fakeMsg{tag: h.q.next, body: b, j: h.j}, published: now.Add(-2 * time.Second)}
		synctest.Wait()
		h.stop(t)
		lag := histogramOf(t, h.p.m.lag)
		if lag.GetSampleCount() != 1 || lag.GetSampleSum() < (4*time.Hour).Seconds() {
			t.Fatalf("lag_seconds: %d samples, sum %v; want the one event's 4h since its observed_at", lag.GetSampleCount(), lag.GetSampleSum())
		}
		delay := histogramOf(t, h.p.m.intakeDelay)
		if delay.GetSampleCount() != 1 || delay.GetSampleSum() < 2 || delay.GetSampleSum() > 3 {
			t.Errorf("intake_delay_seconds: %d samples, sum %v; want the one event's 2s since it was spooled", delay.GetSampleCount(), delay.GetSampleSum())
		}
	})
}
