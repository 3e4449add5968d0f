package evaluator

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
)

// TemplateInfo describes a loaded template.
type TemplateInfo struct {
	Name    string
	Version int
	Type    string
	Body    string
	// Params are the values it was put with (event.Template.Params).
	Params map[string]string
}

// Templates lists the loaded templates, by name.
func (e *Engine) Templates() []TemplateInfo {
	out := make([]TemplateInfo, 0, len(e.templates))
	for _, n := range e.templateNames() {
		l := e.templates[n]
		out = append(out, TemplateInfo{Name: n, Version: l.tpl.Version, Type: l.tpl.Type, Body: l.body, Params: maps.Clone(l.params)})
	}
	return out
}

func (e *Engine) templateNames() []string {
	names := make([]string, 0, len(e.templates))
	for n := range e.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// definitions resolves includes against the loaded definition templates by
// their metadata name, as Vitrage does (the first by event name when two
// share it).
// Definition is the loaded definition template of that metadata name, as
// a template put now would include it (template.Options.Definitions).
func (e *Engine) Definition(name string) (*template.Template, bool) { return e.definitions(name) }

func (e *Engine) definitions(name string) (*template.Template, bool) {
	l := e.definition(name)
	if l == nil {
		return nil, false
	}
	return l.tpl, true
}

func (e *Engine) definition(name string) *loaded {
	for _, n := range e.templateNames() {
		if l := e.templates[n]; l.tpl.Type == template.TypeDefinition && l.tpl.Name == name {
			return l
		}
	}
	return nil
}

// compile parses a template body, with the values of its parameters, as
// builds of apply semantics sem did (template.Options): under the
// semantics of the state it goes into (Engine.semantics), a put as a
// template of a restored state, since Restore reads every template of a
// state under the state's. Includes are resolved through defs.
func compile(name, body string, params map[string]string, defs func(string) (*template.Template, bool), sem int) (*template.Template, error) {
	// Stored: the refusals made only of new templates (templates
	// validate|add) are not made of the log's, so a template an older
	// build added loads in every replay as it did then.
	tpl, err := template.Parse([]byte(body), template.Options{Params: params, Definitions: defs,
		Lenient: sem < semanticsStrictTemplates, TypedScalars: sem < semanticsTextScalars, Stored: true})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidTemplate, name, err)
	}
	return tpl, nil
}

// putTemplate loads (or replaces) a template, with the values of its
// parameters, and runs it over the whole graph. The template's name in the
// event wins over its metadata name, so that a delete by the same name
// finds it. An equivalence template changes what every rule matches, so it
// re-runs every template.
func (e *Engine) putTemplate(name, body string, params map[string]string) ([]graph.Change, error) {
	if name == "" {
		return nil, errors.New("template.put without a name")
	}
	if old, ok := e.templates[name]; ok && old.body == body && maps.Equal(old.params, params) {
		return nil, nil // the same template again: nothing changes
	}
	// Under the state's semantics, not this build's: a snapshot of the
	// state reads the template so when it is restored (semantics 7).
	tpl, err := compile(name, body, params, e.definitions, e.semantics)
	if err != nil {
		return nil, err
	}
	l := &loaded{name: name, body: body, params: cloneParams(params), tpl: tpl, rules: makeRules(name, tpl)}
	for _, inc := range tpl.Includes {
		d := e.definition(inc)
		l.includes = append(l.includes, TemplateState{Name: inc, Body: d.body, Params: cloneParams(d.params)})
	}
	old := e.templates[name]
	if tpl.Type == template.TypeEquivalence || (old != nil && old.tpl.Type == template.TypeEquivalence) {
		e.templates[name] = l
		e.rebuildRules()
		return e.reconcileAll(), nil
	}
	out := e.undoWhere(func(r *rule) bool { return r.tplName == name })
	e.templates[name] = l
	e.rebuildRules()
	return append(out, e.doWhere(func(r *rule) bool { return r.tplName == name })...), nil
}

// cloneParams copies params, nil for none: the engine shares no map with
// the events it applies or the states it writes, and a template without
// params holds nil, as one put before params existed.
func cloneParams(params map[string]string) map[string]string {
	if len(params) == 0 {
		return nil
	}
	return maps.Clone(params)
}

// deleteTemplate UNDOes every match of a template and unloads it.
func (e *Engine) deleteTemplate(name string) ([]graph.Change, error) {
	l, ok := e.templates[name]
	if !ok {
		return nil, nil
	}
	if l.tpl.Type == template.TypeEquivalence {
		delete(e.templates, name)
		e.rebuildRules()
		return e.reconcileAll(), nil
	}
	out := e.undoWhere(func(r *rule) bool { return r.tplName == name })
	delete(e.templates, name)
	e.rebuildRules()
	return out, nil
}

// undoWhere UNDOes every stored match of the rules selected.
func (e *Engine) undoWhere(sel func(*rule) bool) []graph.Change {
	var out []graph.Change
	for _, m := range e.sortedMatches() {
		if sel(m.rule) {
			out = e.undo(m, out)
		}
	}
	return out
}

// reconcileAll brings the stored matches to those of the rules loaded now,
// after an equivalence template changed what every entity matches: it
// UNDOes, in key order, the stored matches that no longer hold (their rule
// is gone or a binding no longer fits), then DOes the new ones, rule by
// rule in key order. The matches that hold before and after are left
// alone, so their effects stay as they are and their external actions are
// not requested again.
func (e *Engine) reconcileAll() []graph.Change {
	live := make(map[*rule]bool, len(e.rules))
	for _, r := range e.rules {
		live[r] = true
	}
	byRule := make(map[*rule]map[string][]Binding, len(e.rules))
	for _, r := range e.rules {
		byKey := map[string][]Binding{}
		e.enumerate(r, r.slotOf[r.c.Positive[0]], 0, func(b []Binding) { byKey[matchKey(r, b)] = slices.Clone(b) })
		byRule[r] = byKey
	}
	var out []graph.Change
	for _, m := range e.sortedMatches() {
		if _, holds := byRule[m.rule][m.key]; !live[m.rule] || !holds {
			out = e.undo(m, out)
		}
	}
	for _, r := range e.rules {
		byKey := byRule[r]
		keys := make([]string, 0, len(byKey))
		for k, b := range byKey {
			if !e.stored(r, k, b) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = e.do(&match{key: k, rule: r, bindings: byKey[k]}, out)
		}
	}
	return out
}

// doWhere enumerates the rules selected over the whole graph and DOes every
// match not stored yet.
func (e *Engine) doWhere(sel func(*rule) bool) []graph.Change {
	var out []graph.Change
	for _, r := range e.rules {
		if !sel(r) {
			continue
		}
		byKey := map[string][]Binding{}
		e.enumerate(r, r.slotOf[r.c.Positive[0]], 0, func(b []Binding) { byKey[matchKey(r, b)] = slices.Clone(b) })
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if e.stored(r, k, byKey[k]) {
				continue
			}
			out = e.do(&match{key: k, rule: r, bindings: byKey[k]}, out)
		}
	}
	return out
}

// rebuildRules recomputes the flat, sorted list of clauses to evaluate. The
// rule objects of a template are made once, when it is loaded, so that the
// matches that point at them stay valid across other templates' changes.
func (e *Engine) rebuildRules() {
	e.rules = nil
	var groups [][]*template.Entity
	for _, n := range e.templateNames() {
		l := e.templates[n]
		e.rules = append(e.rules, l.rules...)
		groups = append(groups, l.tpl.Equivalences...)
	}
	for _, r := range e.rules {
		for _, m := range r.ents {
			m.alts = equivalents(m.e, groups)
			m.compile()
		}
	}
	e.idx = buildIndex(e.rules)
}

// ruleIndex narrows the rules a change can concern: a vertex change only
// rules with an entity that can match the vertex's type and category, an
// edge change only rules with a relationship of the edge's label.
type ruleIndex struct {
	byType  map[string][]int // entity filters with an exact type
	byCat   map[string][]int // no exact type, an exact category (upper case)
	wild    []int            // neither
	byLabel map[string][]int
	// seen caches forVertex (scratch, rebuilt with the index).
	seen map[typeCat][]int
}

func buildIndex(rules []*rule) ruleIndex {
	x := ruleIndex{byType: map[string][]int{}, byCat: map[string][]int{}, byLabel: map[string][]int{}}
	add := func(m map[string][]int, k string, ri int) {
		if l := m[k]; len(l) == 0 || l[len(l)-1] != ri {
			m[k] = append(l, ri)
		}
	}
	for ri, r := range rules {
		wild := false
		ids := make([]string, 0, len(r.ents))
		for id := range r.ents {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			m := r.ents[id]
			for _, te := range append([]*template.Entity{m.e}, m.alts...) {
				typ, hasType := te.Props["type"]
				if !hasType {
					typ, hasType = te.Props["vitrage_type"]
				}
				cat, hasCat := te.Props["category"]
				if !hasCat {
					cat, hasCat = te.Props["vitrage_category"]
				}
				switch {
				case hasType:
					add(x.byType, typ, ri)
				case hasCat:
					add(x.byCat, strings.ToUpper(cat), ri)
				default:
					wild = true
				}
			}
		}
		if wild {
			x.wild = append(x.wild, ri)
		}
		for _, t := range r.c.Terms {
			if !t.IsEntity() {
				add(x.byLabel, t.Label, ri)
			}
		}
	}
	return x
}

// forVertex returns the rules a change of v can concern, ascending. The
// lists are computed once per (type, category) and kept: callers must not
// change them.
func (x *ruleIndex) forVertex(v *graph.Vertex) []int {
	k := typeCat{v.Type, v.Category}
	if out, ok := x.seen[k]; ok {
		return out
	}
	a, b := x.byType[v.Type], x.byCat[strings.ToUpper(v.Category)]
	out := make([]int, 0, len(a)+len(b)+len(x.wild))
	out = append(append(append(out, a...), b...), x.wild...)
	sort.Ints(out)
	out = slices.Compact(out)
	if x.seen == nil {
		x.seen = map[typeCat][]int{}
	}
	if len(x.seen) < maxSeenTypes {
		x.seen[k] = out
	}
	return out
}

// maxSeenTypes bounds the (type, category) pairs whose rule lists are kept.
const maxSeenTypes = 4096

type typeCat struct{ typ, cat string }

// equivalents returns the entities an equivalence group makes equal to e:
// the other members of every group with a member whose filter is exactly
// e's (as Vitrage compares them).
func equivalents(e *template.Entity, groups [][]*template.Entity) []*template.Entity {
	if len(e.Regex) > 0 {
		return nil
	}
	var out []*template.Entity
	for _, g := range groups {
		hit := -1
		for i, m := range g {
			if len(m.Regex) == 0 && maps.Equal(m.Props, e.Props) {
				hit = i
				break
			}
		}
		if hit < 0 {
			continue
		}
		for i, m := range g {
			if i != hit {
				out = append(out, m)
			}
		}
	}
	return out
}

// makeRules builds the rules of a loaded template.
func makeRules(name string, tpl *template.Template) []*rule {
	if tpl.Type != template.TypeStandard {
		return nil
	}
	var rules []*rule
	for si := range tpl.Scenarios {
		sc := &tpl.Scenarios[si]
		for ci := range sc.Clauses {
			c := &sc.Clauses[ci]
			r := &rule{tplName: name, scenario: si, clause: ci, tpl: tpl, sc: sc, c: c,
				posSet: map[string]bool{}, ents: map[string]*matcher{}}
			for _, id := range tpl.EntityIDs() {
				r.ents[id] = &matcher{e: tpl.Entities[id]}
			}
			for _, t := range c.Terms {
				if t.Negated {
					r.neg = append(r.neg, t)
				} else {
					r.pos = append(r.pos, t)
				}
			}
			for _, p := range c.Positive {
				r.posSet[p] = true
			}
			r.index()
			rules = append(rules, r)
		}
	}
	return rules
}

// ruleFor finds a rule by its identity.
func (e *Engine) ruleFor(tplName string, scenario, clause int) *rule {
	for _, r := range e.rules {
		if r.tplName == tplName && r.scenario == scenario && r.clause == clause {
			return r
		}
	}
	return nil
}
