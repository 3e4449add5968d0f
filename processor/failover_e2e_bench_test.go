//go:build e2e

package processor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/processor/apiclient"
)

// BenchmarkE2EFailover measures, with three real processor processes on
// loopback over a log of n entities, the time from kill -9 of the leader
// to another node leading, ready and answering reads at the log head.
// The killed node is restarted (cold: snapshot + replay) and caught up
// between two kills, outside the timer. make bench runs it (tag e2e).
func BenchmarkE2EFailover(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) { benchFailover(b, n) })
	}
}

func benchFailover(b *testing.B, n int) {
	ctx := context.Background()
	dsn := storetest.NewDB(b)
	amqpURL := bustest.VHost(b)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// The log: hosts (one in ten) and the instances they contain.
	log := store.NewLog(db, nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hosts := n / 10
	var batch []store.Entry
	for i := 0; i < n; i++ {
		ev := event.Event{V: event.Version, EventID: fmt.Sprintf("ent-%d", i), Source: "bench", Kind: event.KindEntityUpsert,
			ObservedAt: t0.Add(time.Duration(i) * time.Millisecond)}
		if i < hosts {
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: fmt.Sprintf("h%d", i), Name: fmt.Sprintf("host-%d", i), State: "available"}
		} else {
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: fmt.Sprintf("i%d", i), Name: fmt.Sprintf("vm-%d", i), State: "ACTIVE",
				Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: fmt.Sprintf("h%d", i%hosts), Direction: event.In}}}
		}
		body, err := event.Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, store.Entry{Event: ev, Body: body})
		if len(batch) == 1000 || i == n-1 {
			if _, err := log.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	head, _, err := log.Head(ctx)
	if err != nil || head != int64(n) {
		b.Fatalf("log head %d (%v); want %d", head, err, n)
	}

	c := startCluster(b, dsn, amqpURL, "{every_events: 50000, every_interval: 10m}")
	atHead := func(p *proc) bool {
		st, err := c.status(p)
		return err == nil && st.Ready && st.AppliedSeq == head
	}
	for _, p := range c.procs {
		waitFor(b, p.id+" at the log head", 5*time.Minute, func() bool { return atHead(p) })
	}
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		var lead *proc
		waitFor(b, "a leader", 30*time.Second, func() bool { lead = c.leader(nil); return lead != nil })
		b.StartTimer()
		killed := time.Now()
		if err := lead.cmd.Process.Kill(); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "a new leader serving reads at the head", 30*time.Second, func() bool {
			next := c.leader(map[string]bool{lead.id: true})
			if next == nil || !atHead(next) {
				return false
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			r, err := next.client.Alarms(rctx, apiclient.ListQuery{})
			return err == nil && r.Seq == head
		})
		total += time.Since(killed)
		b.StopTimer()
		c.start(lead)
		waitFor(b, lead.id+" back at the log head", 5*time.Minute, func() bool { return atHead(lead) })
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/failover")
}
