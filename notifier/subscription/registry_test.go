package subscription

import (
	"slices"
	"testing"

	"github.com/causeway/causeway/internal/event"
	"github.com/google/go-cmp/cmp"
)

func ids(subs []*Subscription) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.ID)
	}
	return out
}

// What a subscription was told follows it: a put of its id again keeps it
// (the receiver still holds those alarms open), a delete drops it, a
// cleared ends it, and it is part of the State that Restore reads back.
func TestRegistryTold(t *testing.T) {
	r := NewRegistry()
	apply := func(rec event.Record) {
		t.Helper()
		if _, _, err := r.Apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	tell := func(key, kind, sev string, want ...string) {
		t.Helper()
		if got := ids(r.Tell(key, Alarm{Transition: kind, Severity: sev})); !slices.Equal(got, want) {
			t.Fatalf("Tell(%s %s %s) = %q, want %q", key, kind, sev, got, want)
		}
	}
	apply(rec(1, event.KindSubscriptionPut, "crit", `{"url":"http://c/","filter":{"severities":["critical"]}}`))
	apply(rec(2, event.KindSubscriptionPut, "up", `{"url":"http://u/","filter":{"severities":["critical"],"transitions":["raised","cleared"]}}`))

	tell("a", Raised, "critical", "crit", "up")
	tell("b", Raised, "warning")
	tell("a", SeverityChanged, "warning", "crit") // "up" does not take severity changes, but still holds a
	// b escalates into both filters: "up" is not sent the change (not
	// admitted), but follows b to its clear all the same.
	tell("b", SeverityChanged, "critical", "crit")
	if got := r.State(); !slices.Equal(got[0].Told, []string{"a", "b"}) || !slices.Equal(got[1].Told, []string{"a", "b"}) {
		t.Fatalf("told %q and %q, want [a b] and [a b]", got[0].Told, got[1].Told)
	}

	// Restore reads what was told back.
	r2, err := Restore(r.State())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r2.State(), r.State()); diff != "" {
		t.Fatalf("Restore (-got +want):\n%s", diff)
	}

	// A new filter governs new alarms; a still follows.
	apply(rec(3, event.KindSubscriptionPut, "up", `{"url":"http://u/","filter":{"severities":["minor"]}}`))
	tell("c", Raised, "critical", "crit")
	tell("a", Cleared, "warning", "crit", "up")
	tell("a", Cleared, "warning") // over: told no more
	if got := r.Told("up"); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("up told of %q, want [b]", got)
	}
	tell("e", Raised, "minor", "up")
	if _, _, err := r.Apply(rec(4, event.KindSubscriptionPut, "up", `{"url":"bad://u/"}`)); err == nil {
		t.Fatal("a bad spec put")
	}
	if got := r.Told("up"); !slices.Equal(got, []string{"b", "e"}) {
		t.Fatalf("after a refused put, up is told of %q, want [b e]", got)
	}
	apply(rec(5, event.KindSubscriptionDelete, "crit", ""))
	apply(rec(6, event.KindSubscriptionPut, "crit", `{"url":"http://c/","filter":{"severities":["critical"]}}`))
	if got := r.Told("crit"); got != nil {
		t.Fatalf("a deleted subscription put again is told of %q", got)
	}
	tell("b", Cleared, "warning", "up")

	// A raise starts a new occurrence whatever an earlier one left.
	tell("d", Raised, "critical", "crit")
	tell("d", Raised, "warning")
	tell("d", SeverityChanged, "minor", "up")
	if got := r.Told("crit"); got != nil {
		t.Fatalf("crit told of %q after a raise it did not match", got)
	}
}
