// Package pull builds the events of a datasource's full pull: the
// sync.begin, one entity.upsert per entity and the sync.end, with ids
// derived from the pull's slot and content, so that a pull repeated for
// the same slot publishes the same ids. The drivers' Runner publishes
// them; the template test runner replays them. It does no I/O.
package pull

import (
	"fmt"
	"sort"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// SyncID is the sync id of source's full pull for slot.
func SyncID(source string, slot time.Time) string {
	return event.DeriveID(source, slot.UTC().Format(time.RFC3339Nano))
}

// CheckSource reports why source cannot name a datasource's events (too
// long to route, a control character, the evaluator's own), or nil. A
// driver's configuration checks its source with it: every event of such a
// source is refused, so every pull would fail.
func CheckSource(source string) error {
	return Begin(source, time.Unix(0, 0), time.Unix(1, 0)).Validate()
}

// Begin is the sync.begin of source's full pull for slot, its id
// derived from the sync id.
func Begin(source string, slot, observedAt time.Time) event.Event {
	id := SyncID(source, slot)
	return event.Event{
		V: event.Version, EventID: event.DeriveID(source, id, string(event.KindSyncBegin)),
		Source: source, Kind: event.KindSyncBegin, ObservedAt: observedAt.UTC(), Sync: &event.Sync{ID: id},
	}
}

// Body is the rest of source's full pull for slot, after its
// Begin: one entity.upsert per entity (in type, id order), then the
// sync.end.
//
// Each event id is derived from the source, the sync id, the kind, the
// entity's key and its content hash: the same pull of the same slot gives
// the same ids, whatever observedAt is. Entities are checked with
// event.Validate; two entities with the same type and id are an error.
func Body(source string, slot, observedAt time.Time, ents []event.Entity) ([]event.Event, error) {
	sorted := make([]event.Entity, len(ents))
	copy(sorted, ents)
	sort.SliceStable(sorted, func(a, b int) bool {
		if sorted[a].Type != sorted[b].Type {
			return sorted[a].Type < sorted[b].Type
		}
		return sorted[a].ID < sorted[b].ID
	})
	syncID := SyncID(source, slot)
	at := observedAt.UTC()
	evs := make([]event.Event, 0, len(sorted)+1)
	for i := range sorted {
		if i > 0 && sorted[i].Type == sorted[i-1].Type && sorted[i].ID == sorted[i-1].ID {
			return nil, fmt.Errorf("%s reported %s %s twice", source, sorted[i].Type, sorted[i].ID)
		}
		e := sorted[i]
		ev := event.Event{
			V:       event.Version,
			EventID: event.DeriveID(source, syncID, string(event.KindEntityUpsert), e.Type, e.ID, event.ContentHash(e)),
			Source:  source, Kind: event.KindEntityUpsert, ObservedAt: at, Entity: &e,
		}
		if err := ev.Validate(); err != nil {
			return nil, fmt.Errorf("%s entity %s %s: %w", source, e.Type, e.ID, err)
		}
		evs = append(evs, ev)
	}
	evs = append(evs, event.Event{
		V: event.Version, EventID: event.DeriveID(source, syncID, string(event.KindSyncEnd)),
		Source: source, Kind: event.KindSyncEnd, ObservedAt: at, Sync: &event.Sync{ID: syncID},
	})
	return evs, nil
}

// Events is one whole full pull of source for slot: Begin then Body, all observed at observedAt (the Runner publishes the begin
// before it reads the source).
func Events(source string, slot, observedAt time.Time, ents []event.Entity) ([]event.Event, error) {
	body, err := Body(source, slot, observedAt, ents)
	if err != nil {
		return nil, err
	}
	return append([]event.Event{Begin(source, slot, observedAt)}, body...), nil
}
