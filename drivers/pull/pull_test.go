package pull

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/internal/event"
)

func host(id, state string) event.Entity {
	return event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: id, State: state}
}

func ids(evs []event.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.EventID)
	}
	return out
}

func TestEventsDeterministic(t *testing.T) {
	slot := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	a, err := Events("nova", slot, slot.Add(time.Second), []event.Entity{host("b", "up"), host("a", "up")})
	if err != nil {
		t.Fatal(err)
	}
	// Same content in another order, observed later: same ids.
	b, err := Events("nova", slot, slot.Add(time.Minute), []event.Entity{host("a", "up"), host("b", "up")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids(a), ids(b)); diff != "" {
		t.Errorf("re-published pull changed ids:\n%s", diff)
	}
	if a[1].Entity.ID != "a" || a[2].Entity.ID != "b" || a[0].Kind != event.KindSyncBegin || a[3].Kind != event.KindSyncEnd {
		t.Errorf("pull framing/order wrong: %v", a)
	}
	// Another slot: another sync id. Other content in the same slot (a
	// retry after the source changed): the same sync, other entity ids.
	c, _ := Events("nova", slot.Add(time.Minute), slot, []event.Entity{host("a", "up"), host("b", "up")})
	if c[0].Sync.ID == a[0].Sync.ID {
		t.Errorf("another slot kept sync id %s", a[0].Sync.ID)
	}
	d, _ := Events("nova", slot, slot, []event.Entity{host("a", "up"), host("b", "down")})
	if d[0].EventID != a[0].EventID || d[1].EventID != a[1].EventID || d[2].EventID == a[2].EventID {
		t.Errorf("other content in the same slot: ids %v; want the begin and a's upsert kept, b's changed (%v)", ids(d), ids(a))
	}
	if _, err := Events("nova", slot, slot, []event.Entity{host("a", "up"), host("a", "down")}); err == nil {
		t.Error("duplicate entity accepted")
	}
	if _, err := Events("nova", slot, slot, []event.Entity{{Category: "RESOURCE", Type: "nova.host"}}); err == nil || !strings.Contains(err.Error(), "entity.id") {
		t.Errorf("entity without id: %v, want an entity.id error", err)
	}
}
