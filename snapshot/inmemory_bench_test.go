package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
)

// benchRecords numbers events as memEngine does: seq from first, one
// microsecond of RecordedAt apart.
func benchRecords(evs []event.Event, first int64) []event.Record {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]event.Record, len(evs))
	for i, ev := range evs {
		seq := first + int64(i)
		recs[i] = event.Record{Seq: seq, RecordedAt: at.Add(time.Duration(seq) * time.Microsecond), Event: ev}
	}
	return recs
}

// dumpDigest is the SHA-256 of the machine's canonical dump.
func dumpDigest(tb testing.TB, m Machine) [32]byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := m.Dump(&buf); err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(buf.Bytes())
}

// cpuTime is the process's user+system CPU time: on a shared machine wall
// time lies, CPU time (garbage collection included) much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInMemoryApplyMix measures, without a database, the cold
// reconstruction's replay: applying the updates of benchUpdates(size,
// size) to an engine restored from a state holding benchEntities(size).
// The restore before each run is outside the timer.
func BenchmarkInMemoryApplyMix(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("entities=%d", size), func(b *testing.B) {
			norm, err := graph.NewNormalizer(nil)
			if err != nil {
				b.Fatal(err)
			}
			ents := benchRecords(benchEntities(size), 1)
			upd := benchRecords(benchUpdates(size, size), int64(len(ents))+1)
			base := evaluator.New(evaluator.Config{}, norm)
			for _, r := range ents {
				_ = base.Apply(r)
			}
			st := base.State()
			var cpu time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				e, err := evaluator.Restore(st, evaluator.Config{}, norm)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				cpu0 := cpuTime()
				for _, r := range upd {
					_ = e.Apply(r)
				}
				cpu += cpuTime() - cpu0
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(upd)), "cpu-ns/event")
		})
	}
}

// BenchmarkInMemoryRestoreMix measures, without a database, restoring the
// state of memEngine(size) from its gob payload: the gob decode alone, the
// evaluator's restore of the decoded State alone, and EngineFactory.Restore
// (both).
func BenchmarkInMemoryRestoreMix(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("entities=%d", size), func(b *testing.B) {
			e, norm := memEngine(b, size)
			c, err := CaptureEngine(e, 1, time.Time{}, EngineGob)
			if err != nil {
				b.Fatal(err)
			}
			var payload bytes.Buffer
			if err := c.Encode(&payload); err != nil {
				b.Fatal(err)
			}
			var st evaluator.State
			if err := gob.NewDecoder(bytes.NewReader(payload.Bytes())).Decode(&st); err != nil {
				b.Fatal(err)
			}
			f := EngineFactory{Normalizer: norm}
			m, err := f.Restore(EngineGob, bytes.NewReader(payload.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			if dumpDigest(b, m) != dumpDigest(b, e) {
				b.Fatal("restored dump differs from the engine's")
			}
			for _, sub := range []struct {
				name string
				fn   func() error
			}{
				{"decode", func() error {
					var s evaluator.State
					return gob.NewDecoder(bytes.NewReader(payload.Bytes())).Decode(&s)
				}},
				{"restore", func() error {
					_, err := evaluator.Restore(st, evaluator.Config{}, norm)
					return err
				}},
				{"factory", func() error {
					_, err := f.Restore(EngineGob, bytes.NewReader(payload.Bytes()))
					return err
				}},
			} {
				b.Run(sub.name, func(b *testing.B) {
					b.ReportAllocs()
					cpu0 := cpuTime()
					for i := 0; i < b.N; i++ {
						if err := sub.fn(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/1e6, "cpu-ms/op")
				})
			}
		})
	}
}
