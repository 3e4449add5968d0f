package static

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/drivers"
	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/golden"
)

var (
	_ drivers.Driver  = (*Driver)(nil)
	_ drivers.Watcher = (*Driver)(nil)
)

var at = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".yaml")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			top, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			evs, err := pull.Events("static", at, at, Entities(top))
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if _, err := event.Encode(ev); err != nil {
					t.Errorf("event %s does not encode: %v", ev.EventID, err)
				}
			}
			golden.JSON(t, strings.TrimSuffix(p, ".yaml")+".golden.json", evs)
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"missing_metadata.yaml", "metadata: is required"},
		{"unknown_static_id.yaml", `definitions.relationships[0].target: no entity has static_id "h9"`},
		{"duplicate_static_id.yaml", `definitions.entities[1].static_id: "s1" is also the static_id of definitions.entities[0]`},
		{"missing_fields.yaml", "definitions.entities[0].type: is required"},
		{"missing_fields.yaml", "definitions.relationships[0].relationship_type: is required"},
		{"nested_property.yaml", "definitions.entities[0].ports: must be a scalar"},
		{"not_yaml.yaml", "not YAML"},
		{"garbage_after_document.yaml", "not YAML"},
		{"alarm_entity.yaml", "definitions.entities[0].category: static entities are resources"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "bad", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			top, err := Parse(b)
			if err == nil {
				t.Fatalf("Parse gave %+v, want an error", top)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestRelationTargetIsReported(t *testing.T) {
	b, err := os.ReadFile("testdata/switch_host.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	ents := Entities(top)
	keys := map[string]bool{}
	for _, e := range ents {
		keys[e.Type+"/"+e.ID] = true
	}
	for _, e := range ents {
		for _, r := range e.Relations {
			if r.Direction != event.Out {
				t.Errorf("%s/%s relation %+v: direction %q, want out", e.Type, e.ID, r, r.Direction)
			}
			if !keys[r.Type+"/"+r.ID] {
				t.Errorf("relation target %s/%s is not reported by the pull", r.Type, r.ID)
			}
		}
	}
	sw := ents[1]
	if sw.Type != "switch" || len(sw.Relations) != 1 || sw.Relations[0].Relationship != "attached" || sw.Relations[0].ID != "compute-1" {
		t.Errorf("switch entity %+v, want one attached relation to compute-1", sw)
	}
}

func TestEventsDeterministic(t *testing.T) {
	b, err := os.ReadFile("testdata/zones.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := Parse(b)
	t2, _ := Parse(b)
	events := func(top *Topology) []event.Event {
		t.Helper()
		evs, err := pull.Body("static", at, at, Entities(top))
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	if diff := cmp.Diff(events(t1), events(t2)); diff != "" {
		t.Errorf("same file, different events:\n%s", diff)
	}
	changed := strings.Replace(string(b), `rack: "r7"`, `rack: "r8"`, 1)
	t3, err := Parse([]byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	a, c := events(t1), events(t3)
	if a[1].EventID == c[1].EventID {
		t.Errorf("changed entity kept its event id %s", a[1].EventID)
	}
	if a[0].EventID != c[0].EventID {
		t.Errorf("unchanged entity changed its event id")
	}
}

func TestMergeAcrossFiles(t *testing.T) {
	a, err := Parse([]byte("metadata: {name: a}\ndefinitions:\n  entities:\n    - {static_id: h, type: nova.host, id: c1, rack: r1, role: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte("metadata: {name: b}\ndefinitions:\n  entities:\n    - {static_id: q, type: nova.host, id: c1, rack: r2}\n    - {static_id: s, type: switch, id: s1}\n  relationships:\n    - {source: q, target: s, relationship_type: attached}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := Entities(a, b)
	want := []event.Entity{
		{Category: "RESOURCE", Type: "nova.host", ID: "c1", Properties: map[string]string{"rack": "r2", "role": "x"},
			Relations: []event.Relation{{Relationship: "attached", Category: "RESOURCE", Type: "switch", ID: "s1", Direction: event.Out}}},
		{Category: "RESOURCE", Type: "switch", ID: "s1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged entities (-want +got):\n%s", diff)
	}
}

func TestDriverGetAllAndWatch(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/switch_host.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a topology"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Directory: dir, PollInterval: 10 * time.Millisecond}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := d.GetAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("got %d entities, want 2", len(ents))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- d.Watch(ctx, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	// Write until the watcher notices: its first fingerprint may be taken
	// after our first write.
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		if err := os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("metadata: {name: b}\ndefinitions:\n  entities:\n    - {static_id: x, type: rack, id: \"r"+string(rune('0'+i%10))+"\"}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
			continue
		case <-deadline:
			t.Fatal("Watch did not report the change")
		}
		break
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch returned %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("definitions: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetAll(context.Background()); err == nil || !strings.Contains(err.Error(), "c.yaml") {
		t.Errorf("GetAll with a bad file: %v, want an error naming c.yaml", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{PollInterval: -1, References: []string{"nova.host", "", "nova.host"}}.Validate()
	for _, want := range []string{"directory: is required", "poll_interval: must not be negative",
		`references[1]: "" is not an entity type`, `references[2]: "nova.host" is listed twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	// A source no event may carry: every pull would fail for ever.
	for _, src := range []string{"causeway.evaluator", strings.Repeat("s", 250)} {
		err := Config{Directory: "/d", Source: src}.Validate()
		if err == nil || !strings.Contains(err.Error(), "source: ") {
			t.Errorf("Validate with source %q: %v, want a source error", src, err)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader("directory: /etc/causeway/static\npoll_interval: 2s\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Directory != "/etc/causeway/static" || c.PollInterval != 2*time.Second {
		t.Errorf("decoded %+v", c)
	}
}

// TestImportsStayPure: graph/templatetest imports this package; it must
// not pull in metrics, HTTP or the broker.
func TestImportsStayPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if errors.Is(err, exec.ErrNotFound) && os.Getenv("CI") == "" {
		t.Skip("go is not on PATH")
	}
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/causeway/causeway/drivers/static") {
		t.Fatalf("go list -deps does not list the package itself: %q", deps)
	}
	for _, dep := range deps {
		if dep == "net/http" || strings.Contains(dep, "prometheus") || strings.Contains(dep, "amqp") || dep == "github.com/causeway/causeway/drivers" {
			t.Errorf("drivers/static depends on %s", dep)
		}
	}
}

// TestProjectIDIsTheEntitysProject: project_id is the entity's project
// (what template filters, queries and deduced alarms read), not a free
// property.
func TestProjectIDIsTheEntitysProject(t *testing.T) {
	top, err := Parse([]byte(`metadata: {name: p}
definitions:
  entities:
    - {static_id: s1, type: switch, id: sw-1, name: sw-1, state: available, project_id: demo, rack: r7}
`))
	if err != nil {
		t.Fatal(err)
	}
	ents := Entities(top)
	if len(ents) != 1 || ents[0].ProjectID != "demo" || ents[0].Properties["project_id"] != "" || ents[0].Properties["rack"] != "r7" {
		t.Errorf("entities %+v; want project demo and the rack as a property", ents)
	}
}

// TestMergeAcrossFilesKeepsProject: an entity listed by two files gets the
// project_id either gives (the later file's if both do), as its name and
// state; it was dropped when only the later file gave it.
func TestMergeAcrossFilesKeepsProject(t *testing.T) {
	parse := func(s string) *Topology {
		t.Helper()
		top, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return top
	}
	a := parse("metadata: {name: a}\ndefinitions:\n  entities:\n    - {static_id: s, type: switch, id: sw-1, name: sw-1}\n")
	b := parse("metadata: {name: b}\ndefinitions:\n  entities:\n    - {static_id: t, type: switch, id: sw-1, project_id: demo}\n")
	c := parse("metadata: {name: c}\ndefinitions:\n  entities:\n    - {static_id: u, type: switch, id: sw-1, project_id: ops}\n")
	for _, tc := range []struct {
		tops []*Topology
		want string
	}{{[]*Topology{a, b}, "demo"}, {[]*Topology{b, a}, "demo"}, {[]*Topology{b, c}, "ops"}, {[]*Topology{c, b}, "demo"}} {
		ents := Entities(tc.tops...)
		if len(ents) != 1 || ents[0].ProjectID != tc.want || ents[0].Properties["project_id"] != "" {
			t.Errorf("files %s: entities %+v; want one switch of project %s", names(tc.tops), ents, tc.want)
		}
	}
}

func names(tops []*Topology) []string {
	out := make([]string, len(tops))
	for i, t := range tops {
		out[i] = t.Metadata.Name
	}
	return out
}

// TestMergeKeysAndAliases: YAML merge keys and aliases read as PyYAML (and
// so Vitrage) reads them: the mapping's own keys win over merged ones, and
// the earlier of merged mappings wins.
func TestMergeKeysAndAliases(t *testing.T) {
	top, err := Parse([]byte(`metadata: {name: merged}
definitions:
  entities:
    - &h {static_id: h1, type: nova.host, id: compute-1, state: available, rack: r1}
    - <<: *h
      static_id: h2
      id: compute-2
    - <<: [{rack: r9, static_id: x}, *h]
      static_id: h3
      id: compute-3
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range Entities(top) {
		got[e.ID] = e.Type + " " + e.State + " " + e.Properties["rack"]
	}
	want := map[string]string{
		"compute-1": "nova.host available r1",
		"compute-2": "nova.host available r1",
		"compute-3": "nova.host available r9",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entities %v; want %v", got, want)
	}
}

// TestMergeKeysLikePyYAML: of two "<<" keys the later wins (within one
// list the earlier does), and a mapping merged into itself, however often,
// adds nothing and costs nothing.
func TestMergeKeysLikePyYAML(t *testing.T) {
	top, err := Parse([]byte(`metadata: {name: merged}
definitions:
  entities:
    - &a {static_id: a, type: rack, id: ra, rack: A}
    - &b {static_id: b, type: rack, id: rb, rack: B}
    - {<<: *a, <<: *b, static_id: c, id: rc}
    - &h {<<: [*h, *h, *h, *h, *h, *h, *h, *h], static_id: h1, type: nova.host, id: c1, rack: H}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range Entities(top) {
		got[e.ID] = e.Type + " " + e.Properties["rack"]
	}
	want := map[string]string{"ra": "rack A", "rb": "rack B", "rc": "rack B", "c1": "nova.host H"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entities %v; want %v", got, want)
	}
}

// TestEmptyTopologyRefused: a directory with no topology file (a mount
// missing) or files listing no entity (an empty file is no YAML, refused
// already) was a complete pull of nothing,
// which deletes every entity the static source reported; it fails unless
// allow_empty says it is meant.
func TestEmptyTopologyRefused(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no file":   {"README.txt": "not a topology"},
		"no entity": {"a.yaml": "metadata: {name: a}\ndefinitions:\n  entities: []\n"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for n, body := range files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := New(Config{Directory: dir, Settle: time.Millisecond}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			if ents, err := d.GetAll(context.Background()); !errors.Is(err, ErrEmpty) {
				t.Errorf("GetAll = %d entities, %v; want ErrEmpty", len(ents), err)
			}
			d, err = New(Config{Directory: dir, Settle: time.Millisecond, AllowEmpty: true}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			if ents, err := d.GetAll(context.Background()); err != nil || len(ents) != 0 {
				t.Errorf("GetAll with allow_empty = %d entities, %v; want none and no error", len(ents), err)
			}
		})
	}
}
