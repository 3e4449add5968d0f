package evaluator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
)

// StateVersion is the newest version of State's layout, which this build
// writes and reads:
//
//	1: the first.
//	2: a template may hold the values of its parameters
//	   (TemplateState.Params).
//
// State writes the oldest version that holds the state: 1 unless a
// template, or a definition it included, has params. So a build before
// params restores a state that does not use them, and refuses one that
// does rather than load its templates without their values.
const StateVersion = 2

// stateVersionParams is the first StateVersion whose templates may hold
// params.
const stateVersionParams = 2

// Semantics numbers the meaning this build gives to applying records: it
// goes up with every change after which the same log applies to a
// different state (a fix of what the graph or the evaluator deduce), not
// with changes of State's layout (StateVersion). A state records the
// Semantics of the build that started it from an empty graph, and keeps
// it through snapshots and restores: a state restored from a snapshot of
// an older build is still what the older build computed, whatever build
// applies records to it later. Reconstruction uses such a snapshot like any
// other and reports it (snapshot.Reconstruction.StaleSemantics).
//
// States written before the number existed read as 0.
//
//	1: edges deleted with a vertex stay RCA links only for the alarm's
//	   own occurrence; a deduced alarm keeps its causes when its scenario
//	   clears it; vitrage_state filters read the deduced state.
//	2: a sync.begin supersedes the open syncs of its source (a sync.end
//	   of one of them is refused as unmatched).
//	3: templates are refused past template.MaxTerms terms in a condition
//	   or template.MaxTemplateTerms terms in the DNFs of all its
//	   conditions, and for a regex that compiles only once anchored
//	   ("prod)|(.*", which matched anything) or a clause whose positive
//	   terms do not connect its entities (10203; "host AND instance"
//	   matched every host with every instance). A state of older
//	   semantics keeps the templates its build accepted (Restore parses
//	   them with template.Options.Lenient). A negated term no longer
//	   counts a vertex bound to another entity of the clause, as Vitrage:
//	   "host [contains] instance AND NOT host [contains] other" holds on
//	   a host with one instance (it never held). Putting or deleting an
//	   equivalence template undoes only the matches that stop holding and
//	   does only the new ones (it cleared and raised again every deduced
//	   alarm, and requested every execute_mistral again).
//	4: an entity.delete of an entity the graph does not know leaves a
//	   tombstone (it was dropped): a deleted placeholder whose
//	   sample_timestamp is the delete's observed time. A delete of a
//	   deleted vertex moves its sample_timestamp forward, and an upsert
//	   older than a deleted placeholder's sample_timestamp is ignored. So
//	   an upsert the log records after a delete but observed before it is
//	   ignored (it created, or revived, the entity for good).
//	4: a deduced alarm cleared and raised again within one record (its
//	   template put again, or one clause of its scenario giving way to
//	   another) shows again the `causes` links, to and from it, that
//	   matches still support: they stayed deleted while both alarms were
//	   raised. Template scalars are read as their text, as Vitrage reads
//	   them: `name: 1.10` filters on "1.10" (it read "1.1"), `id: 0123`
//	   on "0123" (it read "83"), and a version 3 entity property or
//	   action value YAML types as a number or a date loads (it was
//	   refused). A state of older semantics keeps its templates as they
//	   were read (Restore parses them with template.Options.TypedScalars).
//	4: the built-in severities of Zabbix and of deduced alarms are
//	   Vitrage's: zabbix HIGH is CRITICAL (it was SEVERE), AVERAGE is
//	   SEVERE (WARNING), NOT CLASSIFIED is N/A ranked above OK (OK), and
//	   a deduced alarm's UNKNOWN ranks between WARNING and OK (it was
//	   unlisted: N/A, below OK).
//	4: what was deleted is removed graph.DeletedRetention (7 days) of
//	   log time after its deletion (it was kept for ever): the first
//	   record of each hour of log time (RecordedAt) removes each deleted
//	   vertex whose update_timestamp is older than that, unless a live
//	   edge still touches it, with every edge to or from it, and each
//	   deleted edge deleted before then; their ids are not reused, and the
//	   engine forgets the matches and effects that still name them. A
//	   vertex reported (or named, or raised) again after that is a new
//	   vertex, and a purged tombstone no longer holds back an upsert
//	   observed before it.
//	5: a webhook subscription is sent every later transition of an alarm
//	   it was told of (raised, or a severity change its filter matched)
//	   until the alarm clears, when its transitions filter admits the kind,
//	   even once the rest of its filter no longer matches the alarm (it
//	   was sent only what matched after each transition: a subscription
//	   to critical alarms never heard of one that dropped to warning and
//	   cleared). The subscription registry of the processor's node
//	   (snapshot.Node) records those open alarms per subscription, so the
//	   outbox rows a replay produces changed, not the graph or the
//	   evaluator's deductions. A node state of older semantics records
//	   none (snapshot.NodeStateVersion 1): an alarm still open in it is
//	   followed only while it matches, as the older build did, and the
//	   alarms raised after it are followed to their end.
//	6: a placeholder (named by a relation, never reported) is removed
//	   with the last edge that names it, when the purge removes that
//	   edge (it was kept for ever, with no edge: every alarm on a
//	   resource no datasource reports left one behind, and the graph
//	   grew without bound). Named again, it is a new vertex.
//	6: a delete of a deleted vertex renews its deletion: its
//	   update_timestamp moves to the delete's record, and the purge
//	   counts graph.DeletedRetention from there (it counted from the
//	   first delete, so an upsert observed before a recent delete, and
//	   recorded after the purge, brought the entity back).
//	7: a template put into a state of older semantics (restored from an
//	   older build's snapshot) is read as that state's build read it
//	   (template.Options.Lenient, TypedScalars), as Restore reads the
//	   state's templates: it was read as this build's, so a later snapshot
//	   of the state, restored, read it otherwise ("name: 1.10" filtered
//	   "1.10" live and "1.1" restored) or refused it and the snapshot with
//	   it. States of semantics 4 and later read templates alike, so only
//	   a replay from a snapshot of semantics 3 or less computes otherwise.
//	8: a webhook subscription follows an alarm whose raise or severity
//	   change the rest of its filter (all but transitions) matches, to
//	   its clear, whether or not its transitions filter let it be sent
//	   that raise or change: one fed only the clears of critical alarms
//	   is sent the clear of an alarm raised critical that dropped to
//	   warning before it cleared (it followed only what it had been sent
//	   a raised or severity_changed of, so that clear was dropped). The
//	   outbox rows a replay produces changed, not the graph or the
//	   evaluator's deductions; the node state's layout did not (the
//	   followed alarms are the told ones of snapshot.NodeStateVersion 2).
//	   A node state of older semantics does not hold the alarms open in
//	   it that were followed without being told: those are followed only
//	   while they match, as the older build did, and the alarms raised
//	   after it are followed to their end.
const Semantics = 8

// semanticsStrictTemplates is the first Semantics whose template
// refusals template.Options.Lenient skips.
const semanticsStrictTemplates = 3

// semanticsTextScalars is the first Semantics that reads every scalar of a
// template as its text (below it: template.Options.TypedScalars).
const semanticsTextScalars = 4

// State is the engine's whole state as plain data, for snapshots.
type State struct {
	Version int `json:"version"`
	// Semantics is the Semantics the state was computed under (see the
	// constant); 0 for states older than the field.
	Semantics int             `json:"semantics,omitempty"`
	Graph     graph.State     `json:"graph"`
	Templates []TemplateState `json:"templates"`
	Matches   []MatchState    `json:"matches"`
	Effects   []EffectState   `json:"effects"`
}

// TemplateState is a loaded template: its name, body and the values of
// its parameters, and the definition templates it included when it was
// loaded (their bodies and params).
type TemplateState struct {
	Name     string            `json:"name"`
	Body     string            `json:"body"`
	Params   map[string]string `json:"params,omitempty"`
	Includes []TemplateState   `json:"includes,omitempty"`
}

// MatchState is a clause match that currently holds.
type MatchState struct {
	Template string    `json:"template"`
	Scenario int       `json:"scenario"`
	Clause   int       `json:"clause"`
	Bindings []Binding `json:"bindings"`
}

// EffectState is a reference-counted effect and its supports.
type EffectState struct {
	Key      string         `json:"key"`
	Kind     string         `json:"kind"`
	Target   graph.VertexID `json:"target"`
	Source   graph.VertexID `json:"source,omitempty"`
	Name     string         `json:"name,omitempty"`
	Applied  string         `json:"applied,omitempty"`
	On       bool           `json:"on"`
	AlarmID  graph.VertexID `json:"alarm_id,omitempty"`
	Supports []Support      `json:"supports"`
}

// Support is one match action supporting an effect, with its value.
type Support struct {
	ID    string `json:"id"`
	Value string `json:"value,omitempty"`
}

// State returns the engine's state. It shares nothing with the engine.
// It copies and sorts everything, O(n log n).
func (e *Engine) State() State {
	s := State{Version: 1, Semantics: e.semantics, Graph: e.g.State()}
	s.Templates, s.Matches, s.Effects = e.bookkeeping()
	if HasParams(s.Templates) {
		s.Version = stateVersionParams
	}
	return s
}

// HasParams reports whether a template, or one it included, has params:
// a state that holds them needs a layout of stateVersionParams or later.
func HasParams(tpls []TemplateState) bool {
	for _, ts := range tpls {
		if len(ts.Params) > 0 || HasParams(ts.Includes) {
			return true
		}
	}
	return false
}

// increasing reports whether the supports are sorted by id without repeats.
func increasing(sp []Support) bool {
	for i := 1; i < len(sp); i++ {
		if sp[i-1].ID >= sp[i].ID {
			return false
		}
	}
	return true
}

// bookkeeping is the engine's state besides the graph, sorted: templates
// by name, matches and effects by key.
func (e *Engine) bookkeeping() ([]TemplateState, []MatchState, []EffectState) {
	tpls := []TemplateState{}
	for _, n := range slices.Sorted(maps.Keys(e.templates)) {
		l := e.templates[n]
		tpls = append(tpls, TemplateState{Name: n, Body: l.body, Params: cloneParams(l.params), Includes: cloneIncludes(l.includes)})
	}
	// Values are collected with their keys and sorted once; bindings and
	// supports are copied into one array each.
	mlist := e.sortedMatches()
	nb := 0
	for _, m := range mlist {
		nb += len(m.bindings)
	}
	binds := make([]Binding, 0, nb)
	matches := make([]MatchState, 0, len(mlist))
	for _, m := range mlist {
		i := len(binds)
		binds = append(binds, m.bindings...)
		bs := binds[i:len(binds):len(binds)]
		if len(bs) == 0 {
			bs = nil
		}
		matches = append(matches, MatchState{Template: m.rule.tplName, Scenario: m.rule.scenario, Clause: m.rule.clause, Bindings: bs})
	}
	type keyed struct {
		key string
		ef  *effect
	}
	elist := make([]keyed, 0, e.effects.n)
	ns := 0
	for ef := range e.effects.all {
		elist = append(elist, keyed{effectKey(ef), ef})
		ns += len(ef.supports)
	}
	slices.SortFunc(elist, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	sups := make([]Support, 0, ns)
	effects := make([]EffectState, 0, len(elist))
	for _, k := range elist {
		ef := k.ef
		i := len(sups)
		sups = append(sups, ef.supports...) // sorted by id
		effects = append(effects, EffectState{Key: k.key, Kind: ef.kind, Target: ef.target, Source: ef.source, Name: ef.name,
			Applied: ef.applied, On: ef.on, AlarmID: ef.alarmID, Supports: sups[i:len(sups):len(sups)]})
	}
	return tpls, matches, effects
}

// cloneIncludes copies included templates with their params (the engine
// shares no map with a State).
func cloneIncludes(incs []TemplateState) []TemplateState {
	out := append([]TemplateState(nil), incs...)
	for i := range out {
		out[i].Params = cloneParams(out[i].Params)
	}
	return out
}

// Restore rebuilds an engine from a State.
func Restore(s State, cfg Config, norm *graph.Normalizer) (*Engine, error) {
	if s.Version < 1 || s.Version > StateVersion {
		return nil, fmt.Errorf("restore evaluator: state version %d, this build reads 1 to %d", s.Version, StateVersion)
	}
	if s.Version < stateVersionParams && HasParams(s.Templates) {
		return nil, fmt.Errorf("restore evaluator: a state of version %d holds template params", s.Version)
	}
	g, err := graph.FromState(s.Graph, norm)
	if err != nil {
		return nil, fmt.Errorf("restore evaluator: %w", err)
	}
	e := newEngine(cfg, g, norm)
	e.semantics = s.Semantics
	// The templates of a state computed under older semantics are those
	// its build accepted: rebuild them as it did, or the snapshot would be
	// refused (and skipped) for a template the log loaded then, or hold
	// rules other than those its matches were found by.
	for _, ts := range s.Templates {
		incs := map[string]TemplateState{}
		for _, inc := range ts.Includes {
			incs[inc.Name] = inc
		}
		defs := func(name string) (*template.Template, bool) {
			inc, ok := incs[name]
			if !ok {
				return nil, false
			}
			t, err := compile(name, inc.Body, inc.Params, nil, s.Semantics)
			return t, err == nil
		}
		tpl, err := compile(ts.Name, ts.Body, ts.Params, defs, s.Semantics)
		if err != nil {
			return nil, fmt.Errorf("restore evaluator: %w", err)
		}
		e.templates[ts.Name] = &loaded{name: ts.Name, body: ts.Body, params: cloneParams(ts.Params), tpl: tpl, rules: makeRules(ts.Name, tpl),
			includes: cloneIncludes(ts.Includes)}
	}
	e.rebuildRules()
	// Every vertex id a match or an effect names is one of the graph's, or
	// (an effect whose entity was unbound) 0: the indexes by vertex id
	// hold those only. None names a purged vertex: the engine forgets them
	// as the graph purges them.
	known := func(v graph.VertexID) bool {
		_, ok := g.Ref(v)
		return v == 0 || ok
	}
	// The matches, their bindings and their keys are each allocated in
	// one array, as the effects below are: a restore makes hundreds of
	// thousands of them. Bindings are capped at their length.
	nb, nk := 0, 0
	for _, ms := range s.Matches {
		nb += len(ms.Bindings)
		if r := e.ruleFor(ms.Template, ms.Scenario, ms.Clause); r != nil {
			nk += matchKeyLen(r, ms.Bindings)
		}
	}
	matches := make([]match, len(s.Matches))
	binds := make([]Binding, 0, nb)
	keyEnds := make([]int, len(s.Matches))
	var keys strings.Builder
	keys.Grow(nk)
	var kbuf []byte
	for i, ms := range s.Matches {
		r := e.ruleFor(ms.Template, ms.Scenario, ms.Clause)
		if r == nil {
			return nil, fmt.Errorf("restore evaluator: match of unknown clause %s/%d/%d", ms.Template, ms.Scenario, ms.Clause)
		}
		if len(ms.Bindings) == 0 {
			return nil, fmt.Errorf("restore evaluator: match of %s/%d/%d without bindings", ms.Template, ms.Scenario, ms.Clause)
		}
		for _, b := range ms.Bindings {
			if _, ok := g.Ref(b.Vertex); !ok {
				return nil, fmt.Errorf("restore evaluator: match of %s/%d/%d binds %s to unknown vertex %d",
					ms.Template, ms.Scenario, ms.Clause, b.Entity, b.Vertex)
			}
		}
		kbuf = appendMatchKey(kbuf[:0], r, ms.Bindings)
		keys.Write(kbuf)
		keyEnds[i] = keys.Len()
		b0 := len(binds)
		binds = append(binds, ms.Bindings...)
		matches[i] = match{rule: r, bindings: binds[b0:len(binds):len(binds)]}
	}
	all := keys.String()
	for i := range matches {
		m := &matches[i]
		start := 0
		if i > 0 {
			start = keyEnds[i-1]
		}
		m.key = all[start:keyEnds[i]]
		e.addMatch(m)
	}
	// The effects and their supports are each allocated in one array;
	// supports are capped at their length, so adding one copies them.
	efs := make([]effect, len(s.Effects))
	ns := 0
	for _, es := range s.Effects {
		ns += len(es.Supports)
	}
	sups := make([]Support, 0, ns)
	for i, es := range s.Effects {
		ef := &efs[i]
		*ef = effect{kind: es.Kind, target: es.Target, source: es.Source, name: es.Name,
			applied: es.Applied, on: es.On, alarmID: es.AlarmID}
		if !known(ef.target) || !known(ef.source) || !known(ef.alarmID) {
			return nil, fmt.Errorf("restore evaluator: effect %q names an unknown vertex", es.Key)
		}
		if !ef.wellFormed() {
			return nil, fmt.Errorf("restore evaluator: effect %q of kind %q has a source %d or name %q its kind has not", es.Key, es.Kind, es.Source, es.Name)
		}
		if k := effectKey(ef); k != es.Key {
			return nil, fmt.Errorf("restore evaluator: effect %q has the fields of %q", es.Key, k)
		}
		if e.effects.get(ef.kind, ef.target, ef.source, ef.name) != nil {
			return nil, fmt.Errorf("restore evaluator: effect %q twice", es.Key)
		}
		if increasing(es.Supports) {
			// As State writes them.
			if len(es.Supports) > 0 {
				j := len(sups)
				sups = append(sups, es.Supports...)
				ef.supports = sups[j:len(sups):len(sups)]
			}
		} else {
			for _, sp := range es.Supports {
				ef.supports.set(sp.ID, sp.Value)
			}
		}
		e.effects.add(ef)
	}
	return e, nil
}

// Dump writes the canonical dump: the graph's dump and the evaluator's
// bookkeeping, byte-stable for the same state.
func (e *Engine) Dump(w io.Writer) error { return DumpState(w, e.State()) }

// CaptureDump copies the engine's state (State) and returns what writes
// its Dump from the copy: call it under the lock that serialises Apply,
// and the returned function outside it.
func (e *Engine) CaptureDump() func(io.Writer) error {
	s := e.State()
	return func(w io.Writer) error { return DumpState(w, s) }
}

// DumpState writes the canonical dump of the engine whose State s is, byte
// for byte the Dump of that engine. It reads s only: a State taken under
// the lock that serialises the engine's Apply (State copies) can be
// dumped outside it, which holds the lock for the copy alone rather than
// for the encoding too. The dump is written as it is rendered, a vertex,
// a template, a match or an effect at a time: its memory is that of one
// of them, not of the whole dump.
func DumpState(w io.Writer, s State) error {
	if err := DumpStateValue(w, s); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write dump: %w", err)
	}
	return nil
}

// DumpStateValue writes the JSON value of DumpState's dump (the dump
// without its final newline), for a dump that holds the engine's.
func DumpStateValue(w io.Writer, s State) error {
	bw := bufio.NewWriter(w)
	if err := writeDump(bw, s); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write dump: %w", err)
	}
	return nil
}

// writeDump writes the dump of s but its final newline to bw, which the
// caller flushes: {"graph":<graph.DumpStateValue>,"evaluator":<the
// templates, matches and effects as json.Marshal writes that struct>}.
func writeDump(bw *bufio.Writer, s State) error {
	bw.WriteString(`{"graph":`)
	if err := graph.DumpStateValue(bw, s.Graph); err != nil {
		return fmt.Errorf("dump graph: %w", err)
	}
	bw.WriteString(`,"evaluator":{"templates":`)
	if err := writeJSONArray(bw, s.Templates); err != nil {
		return fmt.Errorf("dump evaluator: %w", err)
	}
	bw.WriteString(`,"matches":`)
	if err := writeJSONArray(bw, s.Matches); err != nil {
		return fmt.Errorf("dump evaluator: %w", err)
	}
	bw.WriteString(`,"effects":`)
	if err := writeJSONArray(bw, s.Effects); err != nil {
		return fmt.Errorf("dump evaluator: %w", err)
	}
	bw.WriteString("}}")
	return nil
}

// writeJSONArray writes xs as json.Marshal does (null for nil), one
// element marshalled at a time.
func writeJSONArray[T any](bw *bufio.Writer, xs []T) error {
	if xs == nil {
		bw.WriteString("null")
		return nil
	}
	bw.WriteByte('[')
	for i := range xs {
		b, err := json.Marshal(&xs[i])
		if err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.Write(b)
	}
	bw.WriteByte(']')
	return nil
}
