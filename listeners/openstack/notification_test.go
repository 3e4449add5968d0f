package openstack

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/golden"
)

func TestGolden(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.json")
	var n int
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		n++
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := Decode("nova", b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for _, ev := range evs {
				if _, err := event.Encode(ev); err != nil {
					t.Errorf("event %s: %v", ev.EventID, err)
				}
			}
			if evs == nil {
				evs = []event.Event{}
			}
			golden.JSON(t, strings.TrimSuffix(p, ".json")+".golden.json", evs)
		})
	}
	if n < 4 {
		t.Fatalf("only %d cases", n)
	}
}

// decodeFile decodes testdata/name.json, failing the test on an error.
func decodeFile(t *testing.T, name string) []event.Event {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := Decode("nova", b)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestSemantics(t *testing.T) {
	dec := func(name string) []event.Event { return decodeFile(t, name) }
	c := dec("instance_create_end")
	if len(c) != 1 || c[0].Kind != event.KindEntityUpsert {
		t.Fatalf("create.end: %+v", c)
	}
	inst := c[0].Entity
	want := []event.Relation{{Relationship: "contains", Category: "RESOURCE", Type: "nova.host", ID: "compute-1", Direction: event.In}}
	if diff := cmp.Diff(want, inst.Relations); diff != "" {
		t.Errorf("instance must be contained by its host (-want +got):\n%s", diff)
	}
	if inst.State != "ACTIVE" || inst.ProjectID == "" || inst.Properties["flavor"] != "m1.small" {
		t.Errorf("instance entity %+v", inst)
	}
	// Every vm_state nova has is a state the states configuration knows,
	// not the default's undefined one (soft-delete is named SOFT_DELETED
	// there).
	norm := graph.DefaultNormalizer()
	for _, vm := range []string{"active", "building", "paused", "suspended", "stopped", "rescued", "resized", "soft-delete", "deleted", "error", "shelved", "shelved_offloaded"} {
		if st := instanceState(vm); norm.Lookup(graph.CategoryResource, TypeInstance, st).Operational == graph.OpNA {
			t.Errorf("vm_state %s: state %s is not in the nova.instance states", vm, st)
		}
	}
	d := dec("instance_delete_end")
	if d[0].Kind != event.KindEntityDelete || d[0].Entity.ID != inst.ID || d[0].EventID == c[0].EventID {
		t.Errorf("delete.end: %+v", d[0])
	}
	s := dec("service_update")
	host := s[0].Entity
	if host.Type != "nova.host" || host.ID != "compute-1" || host.State != "disabled" ||
		len(host.Relations) != 1 || host.Relations[0].Type != "nova.zone" || host.Relations[0].ID != "zone-a" || host.Relations[0].Direction != event.In {
		t.Errorf("service.update: %+v, want a disabled host contained by zone-a", host)
	}
	for _, ignored := range []string{"service_update_scheduler", "compute_exception", "legacy_unversioned"} {
		if evs := dec(ignored); len(evs) != 0 {
			t.Errorf("%s gave %d events, want none", ignored, len(evs))
		}
	}
	if again := dec("instance_create_end"); again[0].EventID != c[0].EventID {
		t.Error("a redelivered notification got a new event id")
	}
}

// TestServiceLifecycle: nova announces a compute service's creation and
// deletion (service.create, service.delete, with the same payload as
// service.update): the host appears with the first and is deleted with
// the second, or a decommissioned host stays in the graph for ever.
func TestServiceLifecycle(t *testing.T) {
	dec := func(name string) []event.Event { return decodeFile(t, name) }
	c := dec("service_create")
	if len(c) != 1 || c[0].Kind != event.KindEntityUpsert || c[0].Entity.Type != TypeHost || c[0].Entity.ID != "compute-1" || c[0].Entity.State != "available" {
		t.Errorf("service.create: %v, want an upsert of available host compute-1", c)
	}
	d := dec("service_delete")
	if len(d) != 1 {
		t.Fatalf("service.delete gave %d events, want a delete of the host", len(d))
	}
	want := []event.Event{{V: event.Version, EventID: d[0].EventID, Source: "nova", Kind: event.KindEntityDelete,
		ObservedAt: d[0].ObservedAt, Entity: &event.Entity{Category: event.CategoryResource, Type: TypeHost, ID: "compute-1"}}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("service.delete (-want +got):\n%s", diff)
	}
	// A service other than nova-compute is no host, whatever the action.
	b, err := os.ReadFile("testdata/service_update_scheduler.json")
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), `service.update`, `service.delete`, 1))
	if evs, err := Decode("nova", b); err != nil || len(evs) != 0 {
		t.Errorf("service.delete of nova-scheduler: %v, %v; want no event", evs, err)
	}
}

// TestBadIsClipped: a refusal quotes the notification, but not without
// bound (it goes to a log line and a dead letter's header).
func TestBadIsClipped(t *testing.T) {
	body := `{"oslo.version":"` + strings.Repeat("9", 1<<20) + `","oslo.message":"{}"}`
	_, err := Decode("nova", []byte(body))
	if !errors.Is(err, ErrNotification) || len(err.Error()) > 1024 {
		t.Fatalf("Decode: an error of %d bytes (%.60s…); want ErrNotification, clipped", len(err.Error()), err)
	}
}

func TestBad(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"not_json.json", "envelope is not JSON"},
		{"unknown_version.json", `oslo.version: unsupported "1.0" (want "2.0")`},
		{"no_envelope.json", `timestamp: "" is not a timestamp`}, // unwrapped, but no timestamp
		{"message_not_json.json", "oslo.message is not a JSON notification"},
		{"legacy_instance.json", "not a versioned notification"},
		{"no_uuid.json", "nova_object.data.uuid: is required"},
		{"bad_timestamp.json", `timestamp: "yesterday" is not a timestamp`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "bad", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decode("nova", b)
			if !errors.Is(err, ErrNotification) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want ErrNotification with %q", err, tc.want)
			}
		})
	}
}

func TestConfigString(t *testing.T) {
	c := Config{Conn: bus.Conn{URL: "amqp://nova:hunter2@rabbit:5672/"}, Queue: "q"}
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "queue:q") {
		t.Errorf("String: %s", s)
	}
}

// TestConfigSource: a source no event may carry passed Validate, and then
// every notification was dead-lettered.
func TestConfigSource(t *testing.T) {
	for _, src := range []string{"causeway.evaluator", strings.Repeat("s", 250), "nova\n"} {
		err := Config{Conn: bus.Conn{URL: "amqp://h/"}, Source: src}.Validate()
		if err == nil || !strings.Contains(err.Error(), "source: ") {
			t.Errorf("Validate with source %q: %v, want a source error", src, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Prefetch: 10, Batch: 20, RoutingKeys: []string{""}}.Validate()
	for _, want := range []string{"url: is required", "batch: must not exceed prefetch", "routing_keys[0]: must not be empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
}

// TestUnwrappedNotification: oslo.messaging's "messaging" notification
// driver (version 1) sends the notification itself, without the 2.0
// envelope, and oslo's own listeners take both forms (a message without
// both envelope keys is the notification). Such a nova was refused
// whole: every notification went to the dead letters.
func TestUnwrappedNotification(t *testing.T) {
	for _, name := range []string{"instance_create_end", "instance_delete_end", "service_update"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var env Envelope
			if err := json.Unmarshal(b, &env); err != nil || env.Message == "" {
				t.Fatalf("testdata/%s.json is no envelope: %v", name, err)
			}
			got, err := Decode("nova", []byte(env.Message))
			if err != nil {
				t.Fatalf("Decode of the unwrapped notification: %v", err)
			}
			if diff := cmp.Diff(decodeFile(t, name), got); diff != "" {
				t.Errorf("unwrapped notification (-wrapped +unwrapped):\n%s", diff)
			}
		})
	}
}

// TestTimestampForms: oslo writes str() of a UTC datetime: "2026-03-01
// 10:00:00.123456", without the fraction when it is zero, and, for an
// aware datetime (what Python code moving off utcnow() writes), with the
// zone: "+00:00". The zone was taken in the ISO form (with a "T") but not
// in str()'s, whose notifications were all dead-lettered.
func TestTimestampForms(t *testing.T) {
	b, err := os.ReadFile("testdata/instance_create_end.json")
	if err != nil {
		t.Fatal(err)
	}
	const fixture = "2026-03-01 10:00:10.123456"
	if !strings.Contains(string(b), fixture) {
		t.Fatal("the fixture's timestamp changed")
	}
	for ts, want := range map[string]time.Time{
		"2026-03-01 10:00:10.123456":       time.Date(2026, 3, 1, 10, 0, 10, 123456000, time.UTC),
		"2026-03-01 10:00:10":              time.Date(2026, 3, 1, 10, 0, 10, 0, time.UTC),
		"2026-03-01T10:00:10.123456":       time.Date(2026, 3, 1, 10, 0, 10, 123456000, time.UTC),
		"2026-03-01T10:00:10.123456Z":      time.Date(2026, 3, 1, 10, 0, 10, 123456000, time.UTC),
		"2026-03-01 10:00:10.123456+00:00": time.Date(2026, 3, 1, 10, 0, 10, 123456000, time.UTC),
		"2026-03-01 10:00:10+00:00":        time.Date(2026, 3, 1, 10, 0, 10, 0, time.UTC),
		"2026-03-01 11:00:10.123456+01:00": time.Date(2026, 3, 1, 10, 0, 10, 123456000, time.UTC),
		"2026-03-01 10:00:10.123456Z":      time.Date(2026, 3, 1, 10, 0, 10, 123456000, time.UTC),
	} {
		evs, err := Decode("nova", []byte(strings.Replace(string(b), fixture, ts, 1)))
		if err != nil {
			t.Errorf("timestamp %q: %v", ts, err)
			continue
		}
		if got := evs[0].ObservedAt; !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("timestamp %q: observed at %v, want %v", ts, got, want)
		}
	}
}

// TestDeletedInstanceIsNotRevived: nova's usage audit
// (instance_usage_audit, which telemetry deployments turn on) sends
// instance.exists each hour for every instance active in the past period,
// those deleted during it included, in vm_state deleted, dated after their
// delete. Taken as an upsert, it brought every instance deleted in the
// last hour back into the graph, live, contained by its old host, with
// state DELETED. An instance in vm_state deleted is gone, whatever the
// notification says it: it is a delete.
func TestDeletedInstanceIsNotRevived(t *testing.T) {
	del := decodeFile(t, "instance_delete_end")
	exists := decodeFile(t, "instance_exists_deleted")
	if len(exists) != 1 || !exists[0].ObservedAt.After(del[0].ObservedAt) {
		t.Fatalf("instance.exists: %+v, want one event after the delete at %v", exists, del[0].ObservedAt)
	}
	want := event.Entity{Category: event.CategoryResource, Type: TypeInstance, ID: del[0].Entity.ID}
	if got := exists[0]; got.Kind != event.KindEntityDelete || !cmp.Equal(*got.Entity, want) {
		t.Errorf("instance.exists of a deleted instance: %s %+v, want a delete of %s", got.Kind, *got.Entity, want.ID)
	}
	// The same for any instance.* notification in vm_state deleted (the
	// instance.update nova sends as it marks the instance deleted).
	b, err := os.ReadFile("testdata/instance_update.json")
	if err != nil {
		t.Fatal(err)
	}
	upd := strings.Replace(string(b), `\"state\": \"error\", \"power_state\"`, `\"state\": \"deleted\", \"power_state\"`, 1)
	if upd == string(b) {
		t.Fatal("the fixture's state changed")
	}
	evs, err := Decode("nova", []byte(upd))
	if err != nil || len(evs) != 1 || evs[0].Kind != event.KindEntityDelete || evs[0].Entity.Relations != nil {
		t.Errorf("instance.update to vm_state deleted: %+v, %v; want a delete", evs, err)
	}
	// A soft-deleted instance can still be restored: it stays.
	soft := strings.Replace(string(b), `\"state\": \"error\", \"power_state\"`, `\"state\": \"soft-delete\", \"power_state\"`, 1)
	if evs, err := Decode("nova", []byte(soft)); err != nil || evs[0].Kind != event.KindEntityUpsert || evs[0].Entity.State != "SOFT_DELETED" {
		t.Errorf("instance.update to soft-delete: %+v, %v; want an upsert in SOFT_DELETED", evs, err)
	}
}
