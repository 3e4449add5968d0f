package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"fmt"
	"io"
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
// state of memEngine(size) from its payload in each engine encoding, gob
// and bin side by side: the decode alone (through an io.Reader, as
// Reconstruct streams the payload), the evaluator's restore of the decoded
// State alone (the same for every encoding), and EngineFactory.Restore
// (both). The decode sub-benchmarks report the payload's size, raw and
// compressed as the Writer stores it (zstd, default level).
func BenchmarkInMemoryRestoreMix(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("entities=%d", size), func(b *testing.B) {
			e, norm := memEngine(b, size)
			want := dumpDigest(b, e)
			st := e.State()
			f := EngineFactory{Normalizer: norm}
			type sub struct {
				name string
				fn   func() error
				// raw and stored are the payload's sizes (decode only).
				raw, stored int
			}
			subs := []sub{{name: "restore", fn: func() error {
				_, err := evaluator.Restore(st, evaluator.Config{}, norm)
				return err
			}}}
			zw, err := newEncoder(levels["default"])
			if err != nil {
				b.Fatal(err)
			}
			for _, enc := range []struct {
				name, encoding string
				decode         func(io.Reader) error
			}{
				{"gob", EngineGob, func(r io.Reader) error {
					var s evaluator.State
					return gob.NewDecoder(r).Decode(&s)
				}},
				{"bin", EngineBin, func(r io.Reader) error {
					_, err := readEngineBin(r, nil)
					return err
				}},
			} {
				c, err := CaptureEngine(e, 1, time.Time{}, enc.encoding)
				if err != nil {
					b.Fatal(err)
				}
				var payload bytes.Buffer
				if err := c.Encode(&payload); err != nil {
					b.Fatal(err)
				}
				blob, _, err := zw.encode(1, time.Time{}, enc.encoding, c.Encode)
				if err != nil {
					b.Fatal(err)
				}
				m, err := f.Restore(context.Background(), enc.encoding, bytes.NewReader(payload.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				if dumpDigest(b, m) != want {
					b.Fatalf("%s: restored dump differs from the engine's", enc.name)
				}
				p := payload.Bytes()
				subs = append(subs,
					sub{name: enc.name + "/decode", fn: func() error { return enc.decode(bytes.NewReader(p)) }, raw: len(p), stored: len(blob)},
					sub{name: enc.name + "/factory", fn: func() error {
						_, err := f.Restore(context.Background(), enc.encoding, bytes.NewReader(p))
						return err
					}})
			}
			for _, sub := range subs {
				b.Run(sub.name, func(b *testing.B) {
					b.ReportAllocs()
					cpu0 := cpuTime()
					for i := 0; i < b.N; i++ {
						if err := sub.fn(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/1e6, "cpu-ms/op")
					if sub.raw > 0 {
						b.ReportMetric(float64(sub.raw), "raw_bytes")
						b.ReportMetric(float64(sub.stored), "stored_bytes")
					}
				})
			}
		})
	}
}
