// Package templatetest runs template unit tests, in the spirit of `promtool
// test rules`: a spec names template files, an initial topology in Vitrage's
// static-datasource format and a timeline of events, and says what deduced
// alarms, causal edges, states and root causes must hold after chosen steps.
// Everything runs in-process on an evaluator.Engine (no broker, no
// database); every mismatch is printed as a readable diff, and the run
// reports how many events per second it applied.
//
// A spec (paths are relative to the spec file):
//
//	templates: [../../deploy/templates/host_nic.yaml]  # or {path: file, params: {name: value}}
//	topology: [topology.yaml]          # static datasource files, one full sync
//	references: [nova.host]            # types other datasources report (static's references)
//	steps:
//	  - name: NIC down
//	    events:
//	      - alarm: {type: nagios, id: nic-1, name: NIC_DOWN, severity: CRITICAL, on: nova.host/host-1}
//	      # also: clear: type/id, update: {entity: type/id, state: ..., observed_at: -1h},
//	      # delete: type/id, template_add: file (or {path, params}), template_delete: name,
//	      # sync: [files]
//	    expect:
//	      alarms: [{name: instance_nic_degraded, on: nova.instance/vm-1, severity: WARNING}]
//	      causes: [{from: nagios/nic-1, to: "vitrage:instance_nic_degraded@nova.instance/vm-1"}]
//	      states: {nova.host/host-1: SUBOPTIMAL}       # aggregated state
//	      deduced_states: {nova.host/host-1: SUBOPTIMAL}
//	      marked_down: []
//	      deleted: [...]
//	      present: [...]
//	      rca: [{alarm: "vitrage:instance_nic_degraded@nova.instance/vm-1", roots: [nagios/nic-1]}]
//
// alarms, causes and marked_down are complete sets of what is live; the
// other expectations check only what they name. Each record advances a
// logical clock by one second from `start` (default 2026-01-01T00:00:00Z).
package templatetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/drivers/static"
	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/graph/template"
	"github.com/causeway/causeway/internal/event"
)

// Result sums up a run.
type Result struct {
	Specs, Steps, Checks int
	Failures             int
	Events               int
	// Elapsed is the whole run; Applying the part spent applying records.
	Elapsed, Applying time.Duration
}

// EventsPerSecond is the rate at which records were applied (time spent
// applying them, not reading files or checking).
func (r Result) EventsPerSecond() float64 {
	if r.Applying <= 0 {
		return 0
	}
	return float64(r.Events) / r.Applying.Seconds()
}

// OK reports whether every check passed.
func (r Result) OK() bool { return r.Failures == 0 }

// Run runs the spec files and writes a report to out. It returns an error
// only when a spec cannot be run at all (unreadable, malformed, a template
// refused); failed expectations are counted in Result.Failures.
func Run(ctx context.Context, specPaths []string, out io.Writer) (Result, error) {
	var total Result
	start := time.Now()
	for _, p := range specPaths {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		r, err := RunSpec(p, out)
		total.Specs++
		total.Steps += r.Steps
		total.Checks += r.Checks
		total.Failures += r.Failures
		total.Events += r.Events
		total.Applying += r.Applying
		if err != nil {
			return total, fmt.Errorf("spec %s: %w", p, err)
		}
	}
	total.Elapsed = time.Since(start)
	status := "PASS"
	if !total.OK() {
		status = "FAIL"
	}
	fmt.Fprintf(out, "%s: %d spec(s), %d step(s), %d check(s), %d failure(s); %d events applied in %s (%.0f events/s), %s in all\n",
		status, total.Specs, total.Steps, total.Checks, total.Failures, total.Events,
		total.Applying.Round(time.Microsecond), total.EventsPerSecond(), total.Elapsed.Round(time.Microsecond))
	return total, nil
}

type runner struct {
	dir   string
	eng   *evaluator.Engine
	seq   int64
	clock time.Time
	// last reported resources, for updates, and when each was observed
	resources map[string]event.Entity
	sampled   map[string]time.Time
	res       *Result
	// references are the spec's References.
	references map[string]bool
}

// RunSpec runs one spec file.
func RunSpec(path string, out io.Writer) (Result, error) {
	var res Result
	data, err := os.ReadFile(path)
	if err != nil {
		return res, fmt.Errorf("read spec: %w", err)
	}
	spec, err := ParseSpec(data)
	if err != nil {
		return res, err
	}
	r := &runner{dir: filepath.Dir(path), eng: evaluator.New(evaluator.Config{}, nil), res: &res,
		resources: map[string]event.Entity{}, sampled: map[string]time.Time{}, references: map[string]bool{}}
	for _, t := range spec.References {
		r.references[t] = true
	}
	r.clock = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if spec.Start != "" {
		if r.clock, err = time.Parse(time.RFC3339, spec.Start); err != nil {
			return res, fmt.Errorf("start: %w", err)
		}
	}
	t0 := time.Now()
	defer func() { res.Elapsed = time.Since(t0) }()
	tpls, err := r.orderTemplates(spec.Templates)
	if err != nil {
		return res, err
	}
	for _, tp := range tpls {
		if err := r.putTemplate(tp); err != nil {
			return res, err
		}
	}
	if len(spec.Topology) > 0 {
		if err := r.sync(spec.Topology); err != nil {
			return res, err
		}
	}
	for i, st := range spec.Steps {
		res.Steps++
		name := st.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		for j, ev := range st.Events {
			if err := r.event(ev); err != nil {
				return res, fmt.Errorf("step %s event %d: %w", name, j, err)
			}
		}
		if st.Expect != nil {
			diffs := r.check(st.Expect)
			if len(diffs) > 0 {
				res.Failures++
				fmt.Fprintf(out, "--- FAIL %s step %d (%s):\n", path, i, name)
				for _, d := range diffs {
					fmt.Fprintf(out, "    %s\n", strings.ReplaceAll(d, "\n", "\n    "))
				}
			}
		}
	}
	// Every spec also checks invariant 3 on its own log: the engine's state
	// restored into a fresh engine dumps byte for byte the same.
	res.Checks++
	if d := r.restoreDiff(); d != "" {
		res.Failures++
		fmt.Fprintf(out, "--- FAIL %s: state restored from a snapshot differs: %s\n", path, d)
	}
	return res, nil
}

func (r *runner) restoreDiff() string {
	var a, b bytes.Buffer
	if err := r.eng.Dump(&a); err != nil {
		return err.Error()
	}
	re, err := evaluator.Restore(r.eng.State(), evaluator.Config{}, nil)
	if err != nil {
		return err.Error()
	}
	if err := re.Dump(&b); err != nil {
		return err.Error()
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		i := 0
		for i < a.Len() && i < b.Len() && a.Bytes()[i] == b.Bytes()[i] {
			i++
		}
		return fmt.Sprintf("first difference at byte %d", i)
	}
	return ""
}

// orderTemplates puts definition templates first, keeping the given order.
func (r *runner) orderTemplates(refs []TemplateRef) ([]TemplateRef, error) {
	var defs, rest []TemplateRef
	for _, p := range refs {
		full := filepath.Join(r.dir, p.Path)
		body, err := os.ReadFile(full)
		if err != nil {
			return nil, fmt.Errorf("read template: %w", err)
		}
		_, _, typ, err := template.Header(body)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", p.Path, err)
		}
		if typ == template.TypeDefinition {
			defs = append(defs, p)
		} else {
			rest = append(rest, p)
		}
	}
	return append(defs, rest...), nil
}

func (r *runner) apply(ev event.Event) error {
	r.seq++
	r.clock = r.clock.Add(time.Second)
	if ev.ObservedAt.IsZero() {
		ev.ObservedAt = r.clock
	}
	ev.V = event.Version
	if ev.EventID == "" {
		ev.EventID = event.DeriveID("templatetest", fmt.Sprint(r.seq))
	}
	r.res.Events++
	t0 := time.Now()
	err := r.eng.Apply(event.Record{Seq: r.seq, RecordedAt: r.clock, Event: ev})
	r.res.Applying += time.Since(t0)
	return err
}

func isValid(body []byte, opts template.Options) bool {
	return len(template.Validate(body, opts)) == 0
}

func (r *runner) putTemplate(t TemplateRef) error {
	body, err := os.ReadFile(filepath.Join(r.dir, t.Path))
	if err != nil {
		return fmt.Errorf("read template: %w", err)
	}
	name, _, _, err := template.Header(body)
	if err != nil {
		return fmt.Errorf("template %s: %w", t.Path, err)
	}
	// Named as the API names it: with its parameters' values (a name may
	// be get_param(...)); a template that does not parse keeps the name it
	// was written with, and the engine says why it refuses it.
	opts := template.Options{Params: t.Params, Definitions: r.eng.Definition}
	tpl, err := template.Parse(body, opts)
	if err == nil {
		name = tpl.Name
	} else if opts.Stored = true; isValid(body, opts) {
		// Refused only as a new template (template.Options.Stored):
		// the API refuses to add it, and so does a test.
		return fmt.Errorf("template %s: %w", t.Path, err)
	}
	if name == "" {
		name = t.Path
	}
	return r.apply(event.Event{Source: "templatetest", Kind: event.KindTemplatePut,
		Template: &event.Template{Name: name, Body: string(body), Params: t.Params}})
}

func (r *runner) sync(paths []string) error {
	var tops []*static.Topology
	for _, p := range paths {
		data, err := os.ReadFile(filepath.Join(r.dir, p))
		if err != nil {
			return fmt.Errorf("read topology: %w", err)
		}
		t, err := static.Parse(data)
		if err != nil {
			return fmt.Errorf("topology %s: %w", p, err)
		}
		tops = append(tops, t)
	}
	ents, err := static.Resolve(slices.Sorted(maps.Keys(r.references)), tops...)
	if err != nil {
		return fmt.Errorf("topology %s: %w", strings.Join(paths, ", "), err)
	}
	// As the static driver publishes a full pull; each event is then
	// observed when it is recorded, as the timeline's other events are.
	evs, err := pull.Events("static", r.clock, r.clock, ents)
	if err != nil {
		return fmt.Errorf("topology %s: %w", strings.Join(paths, ", "), err)
	}
	pulled := map[string]bool{}
	for _, ev := range evs {
		ev.ObservedAt = time.Time{}
		if err := r.apply(ev); err != nil {
			return err
		}
		if ev.Entity != nil {
			key := ev.Entity.Type + "/" + ev.Entity.ID
			pulled[key] = true
			r.remember(key, *ev.Entity, r.clock)
		}
	}
	// What the static source reported before and no longer does is gone
	// (the graph keeps its vertex, deleted, with its sample time: an older
	// report stays ignored).
	for key, ent := range r.resources {
		if !pulled[key] && r.sourceOf(ent.Type) == "static" {
			delete(r.resources, key)
		}
	}
	return nil
}

// remember keeps ent as the resource's last report if the graph keeps it:
// unless it was observed before the report it holds.
func (r *runner) remember(key string, ent event.Entity, observed time.Time) {
	if observed.Before(r.sampled[key]) {
		return
	}
	r.resources[key], r.sampled[key] = ent, observed
}

// sourceOf is the datasource that reports resources of type typ: its own
// for a referenced type ("nova" for "nova.host"), else static.
func (r *runner) sourceOf(typ string) string {
	if !r.references[typ] {
		return "static"
	}
	src, _, _ := strings.Cut(typ, ".")
	return src
}

func splitRef(ref string) (typ, id string, err error) {
	i := strings.LastIndexByte(ref, '/')
	if i <= 0 || i == len(ref)-1 {
		return "", "", fmt.Errorf("bad entity reference %q (want type/id)", ref)
	}
	return ref[:i], ref[i+1:], nil
}

func (r *runner) observed(offset string) (time.Time, error) {
	if offset == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseDuration(offset)
	if err != nil {
		return time.Time{}, fmt.Errorf("observed_at: %w", err)
	}
	return r.clock.Add(time.Second).Add(d), nil
}

func (r *runner) event(ev Event) error {
	switch {
	case ev.Alarm != nil:
		a := ev.Alarm
		typ, id, err := splitRef(a.On)
		if err != nil {
			return err
		}
		at, err := r.observed(a.ObservedAt)
		if err != nil {
			return err
		}
		return r.apply(event.Event{Source: a.Type, Kind: event.KindEntityUpsert, ObservedAt: at,
			Entity: &event.Entity{Category: event.CategoryAlarm, Type: a.Type, ID: a.ID, Name: a.Name,
				Severity: a.Severity, State: "Active", Properties: a.Props,
				Relations: []event.Relation{{Relationship: "on", Category: event.CategoryResource, Type: typ, ID: id, Direction: event.Out}}}})
	case ev.Clear != "":
		typ, id, err := splitRef(ev.Clear)
		if err != nil {
			return err
		}
		return r.apply(event.Event{Source: typ, Kind: event.KindEntityDelete,
			Entity: &event.Entity{Category: event.CategoryAlarm, Type: typ, ID: id}})
	case ev.Update != nil:
		u := ev.Update
		typ, id, err := splitRef(u.Entity)
		if err != nil {
			return err
		}
		ent, ok := r.resources[u.Entity]
		if !ok {
			ent = event.Entity{Category: event.CategoryResource, Type: typ, ID: id}
		}
		if u.State != "" {
			ent.State = u.State
		}
		if u.Name != "" {
			ent.Name = u.Name
		}
		if len(u.Props) > 0 {
			props := map[string]string{}
			for k, v := range ent.Properties {
				props[k] = v
			}
			for k, v := range u.Props {
				props[k] = v
			}
			ent.Properties = props
		}
		at, err := r.observed(u.ObservedAt)
		if err != nil {
			return err
		}
		if err := r.apply(event.Event{Source: r.sourceOf(typ), Kind: event.KindEntityUpsert, ObservedAt: at, Entity: &ent}); err != nil {
			return err
		}
		if at.IsZero() {
			at = r.clock // observed when recorded
		}
		r.remember(u.Entity, ent, at)
		return nil
	case ev.Delete != "":
		typ, id, err := splitRef(ev.Delete)
		if err != nil {
			return err
		}
		if err := r.apply(event.Event{Source: r.sourceOf(typ), Kind: event.KindEntityDelete,
			Entity: &event.Entity{Category: event.CategoryResource, Type: typ, ID: id}}); err != nil {
			return err
		}
		// As the graph: a delete older than the report it holds is
		// ignored; one it takes leaves the deleted vertex's sample time.
		if !r.clock.Before(r.sampled[ev.Delete]) {
			delete(r.resources, ev.Delete)
			r.sampled[ev.Delete] = r.clock
		}
		return nil
	case ev.TemplateAdd.Path != "":
		return r.putTemplate(ev.TemplateAdd)
	case ev.TemplateDelete != "":
		return r.apply(event.Event{Source: "templatetest", Kind: event.KindTemplateDelete,
			Template: &event.Template{Name: ev.TemplateDelete}})
	case ev.Sync != nil:
		return r.sync(ev.Sync)
	}
	return fmt.Errorf("empty event")
}

// ---- checks ----

// ref names a vertex the way specs do.
func ref(g *graph.Graph, v graph.Vertex) string {
	if v.Category == graph.CategoryAlarm && v.Type == graph.DeducedType {
		for _, e := range g.Out(v.ID) {
			if e.Relationship == graph.RelOn {
				if t, ok := g.Vertex(e.To); ok {
					return "vitrage:" + v.Name + "@" + t.Type + "/" + t.ExternalID
				}
			}
		}
	}
	return v.Type + "/" + v.ExternalID
}

func live(v graph.Vertex) bool { return !v.IsDeleted && !v.IsPlaceholder }

func (r *runner) find(g *graph.Graph, refStr string) (graph.Vertex, bool) {
	if rest, ok := strings.CutPrefix(refStr, "vitrage:"); ok {
		at := strings.LastIndexByte(rest, '@')
		if at < 0 {
			return graph.Vertex{}, false
		}
		typ, id, err := splitRef(rest[at+1:])
		if err != nil {
			return graph.Vertex{}, false
		}
		tid, ok := g.Lookup(graph.CategoryResource, typ, id)
		if !ok {
			return graph.Vertex{}, false
		}
		aid, ok := g.Lookup(graph.CategoryAlarm, graph.DeducedType, graph.DeducedExternalID(tid, rest[:at]))
		if !ok {
			return graph.Vertex{}, false
		}
		return g.Vertex(aid)
	}
	typ, id, err := splitRef(refStr)
	if err != nil {
		return graph.Vertex{}, false
	}
	for _, cat := range []string{graph.CategoryResource, graph.CategoryAlarm} {
		if vid, ok := g.Lookup(cat, typ, id); ok {
			return g.Vertex(vid)
		}
	}
	return graph.Vertex{}, false
}

func setDiff(what string, got, want []string) string {
	gs, ws := map[string]bool{}, map[string]bool{}
	for _, s := range got {
		gs[s] = true
	}
	for _, s := range want {
		ws[s] = true
	}
	var lines []string
	for _, s := range want {
		if !gs[s] {
			lines = append(lines, "- "+s+"   (expected, missing)")
		}
	}
	for _, s := range got {
		if !ws[s] {
			lines = append(lines, "+ "+s+"   (present, not expected)")
		}
	}
	if len(lines) == 0 {
		return ""
	}
	sort.Strings(lines)
	return what + " differ:\n" + strings.Join(lines, "\n")
}

func (r *runner) check(ex *Expect) []string {
	g := r.eng.Graph()
	var diffs []string
	ids := g.VertexIDs()
	if ex.Alarms != nil {
		r.res.Checks++
		var got, want []string
		for _, id := range ids {
			v, _ := g.Vertex(id)
			if v.Category == graph.CategoryAlarm && v.Type == graph.DeducedType && live(v) {
				on := strings.TrimPrefix(ref(g, v), "vitrage:"+v.Name+"@")
				got = append(got, fmt.Sprintf("%s on %s severity %s", v.Name, on, v.Severity))
			}
		}
		for _, a := range *ex.Alarms {
			want = append(want, fmt.Sprintf("%s on %s severity %s", a.Name, a.On, a.Severity))
		}
		if d := setDiff("deduced alarms", got, want); d != "" {
			diffs = append(diffs, d)
		}
	}
	if ex.Causes != nil {
		r.res.Checks++
		var got, want []string
		for _, id := range ids {
			v, _ := g.Vertex(id)
			if !live(v) {
				continue
			}
			for _, e := range g.Out(id) {
				if e.Relationship != graph.RelCauses || e.IsDeleted {
					continue
				}
				t, ok := g.Vertex(e.To)
				if !ok || !live(t) {
					continue
				}
				got = append(got, ref(g, v)+" -> "+ref(g, t))
			}
		}
		for _, c := range *ex.Causes {
			want = append(want, c.From+" -> "+c.To)
		}
		if d := setDiff("causes edges", got, want); d != "" {
			diffs = append(diffs, d)
		}
	}
	if ex.MarkedDown != nil {
		r.res.Checks++
		var got []string
		for _, id := range ids {
			v, _ := g.Vertex(id)
			if live(v) && v.IsMarkedDown {
				got = append(got, ref(g, v))
			}
		}
		if d := setDiff("marked down", got, *ex.MarkedDown); d != "" {
			diffs = append(diffs, d)
		}
	}
	for _, k := range sortedKeys(ex.States) {
		r.res.Checks++
		v, ok := r.find(g, k)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("state of %s: no such entity", k))
		case !strings.EqualFold(v.AggregatedState, ex.States[k]):
			diffs = append(diffs, fmt.Sprintf("state of %s:\n- %s   (expected)\n+ %s   (aggregated state; reported %q, deduced %q)",
				k, ex.States[k], v.AggregatedState, v.State, v.DeducedState))
		}
	}
	for _, k := range sortedKeys(ex.DeducedStates) {
		r.res.Checks++
		v, ok := r.find(g, k)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("deduced state of %s: no such entity", k))
		case v.DeducedState != ex.DeducedStates[k]:
			diffs = append(diffs, fmt.Sprintf("deduced state of %s:\n- %q   (expected)\n+ %q", k, ex.DeducedStates[k], v.DeducedState))
		}
	}
	for _, k := range ex.Deleted {
		r.res.Checks++
		switch v, ok := r.find(g, k); {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: expected deleted, is missing", k))
		case !v.IsDeleted:
			diffs = append(diffs, fmt.Sprintf("%s: expected deleted, is live", k))
		}
	}
	for _, k := range ex.Present {
		r.res.Checks++
		if v, ok := r.find(g, k); !ok || !live(v) {
			diffs = append(diffs, fmt.Sprintf("%s: expected live, is deleted or missing", k))
		}
	}
	for _, rc := range ex.RCA {
		r.res.Checks++
		v, ok := r.find(g, rc.Alarm)
		if !ok {
			diffs = append(diffs, fmt.Sprintf("rca of %s: no such alarm", rc.Alarm))
			continue
		}
		an, err := g.RCA(v.ID)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("rca of %s: %v", rc.Alarm, err))
			continue
		}
		var got []string
		for _, id := range an.Roots {
			rv, _ := g.Vertex(id)
			got = append(got, ref(g, rv))
		}
		if d := setDiff("root causes of "+rc.Alarm, got, rc.Roots); d != "" {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
