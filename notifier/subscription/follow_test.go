package subscription

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/causeway/causeway/internal/event"
)

// TestTellFollowsRandomHistories: over random alarm histories and filters
// (transitions subsets, severities matched by the normalised or the raw
// severity, projects of the alarm or of its resource, a filter replaced
// while alarms are followed, restores of the state), a subscription is
// sent only transitions it admits, of an occurrence the rest of a filter
// in force matched at one of its raises or changes (or at that
// transition), and the clear of every occurrence such a filter matched
// while open whenever its filter admits clears.
func TestTellFollowsRandomHistories(t *testing.T) {
	sevs := []string{"critical", "warning", "minor"}
	pick := func(rng *rand.Rand, from []string) []string {
		var out []string
		for _, s := range from {
			if rng.IntN(2) == 0 {
				out = append(out, s)
			}
		}
		return out
	}
	for round := 0; round < 300; round++ {
		rng := rand.New(rand.NewPCG(uint64(round), 3))
		r := NewRegistry()
		subIDs := []string{"s0", "s1", "s2"}
		seq := int64(0)
		put := func(id string) {
			f := Filter{Transitions: pick(rng, []string{Raised, SeverityChanged, Cleared}), Severities: pick(rng, append(sevs, "disaster")),
				Projects: pick(rng, []string{"p1", "p2"})}
			raw, err := json.Marshal(Spec{URL: "http://x/", Filter: f})
			if err != nil {
				t.Fatal(err)
			}
			seq++
			if _, _, err := r.Apply(rec(seq, event.KindSubscriptionPut, id, string(raw))); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range subIDs {
			put(id)
		}
		type open struct {
			a       Alarm
			matched map[string]bool // per subscription: a filter in force matched a raise or change
		}
		alarms := map[string]*open{}
		for step := 0; step < 60; step++ {
			switch rng.IntN(10) {
			case 0:
				put(subIDs[rng.IntN(len(subIDs))])
				continue
			case 1:
				st, err := Restore(r.State())
				if err != nil {
					t.Fatal(err)
				}
				r = st
				continue
			}
			key := fmt.Sprintf("ALARM/x/%d", rng.IntN(4))
			o := alarms[key]
			a := Alarm{Severity: sevs[rng.IntN(3)], RawSeverity: []string{"", "disaster", "high"}[rng.IntN(3)],
				ProjectID: []string{"", "p1"}[rng.IntN(2)], ResourceProjectID: []string{"", "p2"}[rng.IntN(2)]}
			switch {
			case o == nil:
				a.Transition = Raised
				o = &open{matched: map[string]bool{}}
				alarms[key] = o
			case rng.IntN(3) == 0:
				a = o.a
				a.Transition = Cleared
			default:
				a.Transition = SeverityChanged
			}
			o.a = a
			sent := r.Tell(key, a)
			var sentIDs []string
			for _, s := range sent {
				sentIDs = append(sentIDs, s.ID)
			}
			if !slices.IsSorted(sentIDs) {
				t.Fatalf("round %d: sent %q, not sorted by id", round, sentIDs)
			}
			for _, s := range r.All() {
				matches := s.matchesAlarm(a)
				if a.Transition != Cleared && matches {
					o.matched[s.ID] = true
				}
				got := slices.Contains(sentIDs, s.ID)
				want := s.admits(a.Transition) && (matches || o.matched[s.ID])
				if got != want {
					t.Fatalf("round %d step %d: %s of %s (%+v) to %s (filter %+v): sent %v, want %v", round, step, a.Transition, key, a, s.ID, s.Spec.Filter, got, want)
				}
			}
			if a.Transition == Cleared {
				delete(alarms, key)
			}
		}
	}
}
