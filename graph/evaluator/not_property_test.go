package evaluator

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/event"
)

// TestPropertyNotExcludesBoundIncrementally: with templates whose negated
// terms can meet vertices bound to another entity of the clause (a second
// instance of the host, a second volume of the instance, a second NIC
// alarm of the host), evaluating a random log record by record gives, at
// every checkpoint, what evaluating the graph of that moment from scratch
// gives. Whether a negation holds now depends on the rest of the binding,
// so the anchors of each change must still reach every match it affects.
func TestPropertyNotExcludesBoundIncrementally(t *testing.T) {
	paths, _ := filepath.Glob("../../testdata/scenarios/not_bound_elsewhere/*.yaml")
	var tpls []event.Event
	for _, p := range paths {
		if strings.HasSuffix(p, "spec.yaml") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		tpls = append(tpls, put(filepath.Base(p), string(b)))
	}
	if len(tpls) < 3 {
		t.Fatalf("only %d templates found", len(tpls))
	}
	n := 1200
	if testing.Short() {
		n = 400
	}
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (replay with CAUSEWAY_EVALUATOR_SEED=%d)", seed, seed)
			var recs []event.Record
			for _, r := range genLog(t, seed, n) {
				if k := r.Event.Kind; k != event.KindTemplatePut && k != event.KindTemplateDelete {
					recs = append(recs, r)
				}
			}
			// The templates go in at a random point, so that some matches
			// are found by the put's full evaluation and others as the log
			// goes on.
			at := rand.New(rand.NewSource(seed)).Intn(len(recs) / 2)
			withTpls := func(prefix []event.Record) []event.Record {
				var out []event.Record
				for i, r := range prefix {
					if i == at {
						for _, tp := range tpls {
							out = append(out, event.Record{RecordedAt: r.RecordedAt, Event: tp})
						}
					}
					out = append(out, r)
				}
				for i := range out {
					out[i].Seq = int64(i + 1)
					out[i].Event.V = event.Version
					out[i].Event.EventID = fmt.Sprintf("n%d", i+1)
				}
				return out
			}
			inc := New(Config{}, nil)
			all := withTpls(recs)
			applied, effects := 0, 0
			for _, cp := range []int{len(recs) / 4, len(recs) / 2, 3 * len(recs) / 4, len(recs)} {
				if cp <= at {
					continue
				}
				want := withTpls(recs[:cp])
				applyAll(t, inc, all[applied:len(want)])
				applied = len(want)

				// From scratch: the graph of the checkpoint, then the
				// templates over it.
				var graphOnly []event.Record
				for _, r := range want {
					if r.Event.Kind != event.KindTemplatePut {
						graphOnly = append(graphOnly, r)
					}
				}
				s := New(Config{}, nil)
				applyAll(t, s, graphOnly)
				last := graphOnly[len(graphOnly)-1]
				for i, tp := range tpls {
					tp.V, tp.EventID = event.Version, fmt.Sprintf("s%d", i)
					applyAll(t, s, []event.Record{{Seq: last.Seq + int64(i) + 1, RecordedAt: last.RecordedAt, Event: tp}})
				}
				got, wantSum := summary(inc), summary(s)
				if strings.Join(got, "\n") != strings.Join(wantSum, "\n") {
					t.Fatalf("at record %d of %d: incremental result differs from a from-scratch evaluation:\n%s", cp, len(recs), lineDiff(got, wantSum))
				}
				effects += len(got)
			}
			if seed == 1 && effects == 0 {
				t.Fatal("seed 1 has no effect at any checkpoint: the property would be vacuous")
			}
			t.Logf("%d records, templates at %d, %d effects over the checkpoints", len(recs), at, effects)
		})
	}
}
