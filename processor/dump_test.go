package processor

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
)

// lockProbe is a Machine whose dump says whether the follower's lock was
// free while it was written (TryLock succeeds only when nobody holds it).
type lockProbe struct {
	mu *sync.RWMutex
	// freeWhileWritten records, for each dump written, whether the lock
	// was free meanwhile.
	freeWhileWritten []bool
}

func (p *lockProbe) Apply(event.Record) error { return nil }
func (p *lockProbe) Dump(w io.Writer) error {
	free := p.mu.TryLock()
	if free {
		p.mu.Unlock()
	}
	p.freeWhileWritten = append(p.freeWhileWritten, free)
	_, err := io.WriteString(w, "probe\n")
	return err
}

// CaptureDump copies nothing (the probe has no state) and writes the
// dump later, as snapshot.Node and evaluator.Engine do from their copy.
func (p *lockProbe) CaptureDump() func(io.Writer) error { return p.Dump }

// TestDumpHoldsTheLockForTheCaptureOnly: GET /v1/debug/dump copies the
// state under the follower's lock and writes the dump from the copy
// outside it. It wrote the whole dump holding the lock for reading, 0.5 to
// 0.7 s at 100k entities, and held back the application of the log as
// long (BenchmarkDumpLockHold).
func TestDumpHoldsTheLockForTheCaptureOnly(t *testing.T) {
	f := newFollower(nil, DefaultPageSize, slog.New(slog.DiscardHandler))
	p := &lockProbe{mu: &f.mu}
	f.load(p, 3, time.Time{})
	n := &node{f: f}
	b, seq, err := dumpOf(n)
	if err != nil || string(b) != "probe\n" || seq != 3 {
		t.Fatalf("Dump = %q, %d, %v; want the probe's dump at seq 3", b, seq, err)
	}
	if len(p.freeWhileWritten) != 1 || !p.freeWhileWritten[0] {
		t.Errorf("the dump was written holding the follower's lock (free while written: %v)", p.freeWhileWritten)
	}
}

// dumpOf is the dump n.Dump captures, written.
func dumpOf(n *node) ([]byte, int64, error) {
	write, seq, err := n.Dump()
	if err != nil {
		return nil, 0, err
	}
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return nil, 0, err
	}
	return b.Bytes(), seq, nil
}

// dumpMachines are the two machines a node keeps, with a template, a
// subscription and the bench log applied.
func dumpMachines(t testing.TB, n int) map[string]Machine {
	t.Helper()
	recs := []event.Record{
		{Seq: 1, Event: event.Event{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "all", Spec: []byte(`{"url":"http://a/"}`)}}},
	}
	for _, r := range benchRecords(n) {
		r.Seq++
		recs = append(recs, r)
	}
	node, err := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
	if err != nil {
		t.Fatal(err)
	}
	machines := map[string]Machine{"node": node, "engine": evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())}
	for _, m := range machines {
		for _, r := range recs {
			_ = m.Apply(r)
		}
	}
	return machines
}

// TestDumpFromCaptureIsTheDump: the dump written from the capture is the
// machine's Dump byte for byte (the dumps compared across nodes and with
// replay --format dump), for the node and for a bare engine, also while
// records are applied meanwhile (-race: the dump reads the copy only).
func TestDumpFromCaptureIsTheDump(t *testing.T) {
	for name, m := range dumpMachines(t, 500) {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			if err := m.Dump(&want); err != nil {
				t.Fatal(err)
			}
			f := newFollower(nil, DefaultPageSize, slog.New(slog.DiscardHandler))
			f.load(m, 501, time.Time{})
			n := &node{f: f}
			got, seq, err := dumpOf(n)
			if err != nil || seq != 501 {
				t.Fatalf("Dump: seq %d, %v", seq, err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("the dump of the capture differs from the machine's Dump (%d and %d bytes)", len(got), want.Len())
			}
			// Records applied while dumps are written: each dump is the
			// state at its seq, whole.
			more := benchRecords(700)[500:]
			for i := range more {
				more[i].Seq = int64(502 + i)
				more[i].Event.EventID += "-more"
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < len(more); i += 20 {
					if _, err := f.applyRecords(more[i:min(i+20, len(more))]); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			for range 5 {
				if _, _, err := dumpOf(n); err != nil {
					t.Error(err)
				}
			}
			<-done
		})
	}
}

// largestWrite is a ResponseWriter that keeps the body and the size of
// its largest single Write.
type largestWrite struct {
	discardResponse
	body    bytes.Buffer
	largest int
}

func (l *largestWrite) Write(p []byte) (int, error) {
	l.largest = max(l.largest, len(p))
	l.body.Write(p)
	return l.discardResponse.Write(p)
}

// TestDumpIsWrittenAsRendered: GET /v1/debug/dump writes the dump to the
// response as it is rendered, byte for byte the machine's Dump. It was
// rendered whole in memory, in buffers copied into one another, and
// written at once: about 690 MB allocated for a dump of 64 MB at 100k
// entities (BenchmarkDumpRequest), per request.
func TestDumpIsWrittenAsRendered(t *testing.T) {
	for name, m := range dumpMachines(t, 5000) {
		t.Run(name, func(t *testing.T) {
			var want bytes.Buffer
			if err := m.Dump(&want); err != nil {
				t.Fatal(err)
			}
			f := newFollower(nil, DefaultPageSize, slog.New(slog.DiscardHandler))
			f.load(m, 5001, time.Time{})
			s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "t", Role: api.RoleAdmin}}},
				newServedNode(&node{f: f}), api.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/v1/debug/dump", nil)
			req.Header.Set("Authorization", "Bearer t")
			w := &largestWrite{discardResponse: discardResponse{h: http.Header{}}}
			s.Handler().ServeHTTP(w, req)
			if w.code != http.StatusOK || w.h.Get(api.HeaderSeq) != "5001" {
				t.Fatalf("dump: %d, seq %q: %s", w.code, w.h.Get(api.HeaderSeq), w.body.Bytes()[:min(200, w.body.Len())])
			}
			if !bytes.Equal(w.body.Bytes(), want.Bytes()) {
				t.Fatalf("the dump answered differs from the machine's Dump (%d and %d bytes)", w.body.Len(), want.Len())
			}
			if w.largest > 64<<10 {
				t.Errorf("the dump (%d bytes) was written %d bytes at a time: rendered in memory first, not written as rendered", want.Len(), w.largest)
			}
		})
	}
}
