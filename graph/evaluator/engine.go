package evaluator

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
	"github.com/causeway/causeway/internal/event"
)

// ErrNoFixpoint is returned when evaluating one record takes more steps than
// Config.MaxSteps: templates that feed each other without end.
var ErrNoFixpoint = errors.New("evaluator: no fixpoint within the step bound")

// ErrInvalidTemplate wraps the validation error of a template.put whose body
// is refused. The engine's state is unchanged (a previous version of the
// template stays loaded); callers log it and go on with the next record.
var ErrInvalidTemplate = errors.New("invalid template")

// DefaultMaxSteps bounds the changes evaluated for one record.
const DefaultMaxSteps = 1_000_000

// Config tunes an Engine.
type Config struct {
	// MaxSteps bounds the graph changes evaluated for one record (0: DefaultMaxSteps).
	MaxSteps int
}

// Engine owns a graph and the loaded templates. It is not safe for
// concurrent use; its owner serialises every call.
type Engine struct {
	g        *graph.Graph
	norm     *graph.Normalizer
	maxSteps int

	templates map[string]*loaded
	rules     []*rule // sorted by (template, scenario, clause)
	idx       ruleIndex

	matches map[string]*match
	// byAnchor indexes the stored matches by each of their bindings.
	byAnchor map[akey]map[string]struct{}
	effects  map[string]*effect

	// en is the reusable enumerator (scratch space, not state).
	en *enumerator

	// outputs of the record being applied; not state.
	external []ExternalAction
	seq      int64
}

type loaded struct {
	name, body string
	// includes are the bodies of the definition templates it included, so
	// that a restore can rebuild it even if a definition was deleted since.
	includes []TemplateState
	tpl      *template.Template
	rules    []*rule
}

type rule struct {
	tplName  string
	scenario int
	clause   int
	tpl      *template.Template
	sc       *template.Scenario
	c        *template.Clause
	pos      []template.Term // positive terms
	neg      []template.Term // negated relationship terms
	posSet   map[string]bool
	ents     map[string]*matcher
}

type match struct {
	key      string
	rule     *rule
	bindings []Binding // sorted by entity
}

func (m *match) vertex(entity string) graph.VertexID {
	for _, b := range m.bindings {
		if b.Entity == entity {
			return b.Vertex
		}
	}
	return 0
}

// Binding binds a template entity to a graph vertex.
type Binding struct {
	Entity string         `json:"entity"`
	Vertex graph.VertexID `json:"vertex"`
}

type effect struct {
	key     string
	kind    string // "alarm", "state", "causes", "down"
	target  graph.VertexID
	source  graph.VertexID // causes: from
	name    string         // alarm name
	applied string         // the value the graph shows
	on      bool           // the graph shows the effect
	alarmID graph.VertexID
	// supports: support id -> value (severity, state, or "").
	supports map[string]string
}

// ExternalAction is a request for an action outside the graph (Vitrage's
// execute_mistral), produced when a scenario starts to hold. The notifier
// delivers it; it is an output of Apply, not part of the engine's state.
type ExternalAction struct {
	// ID is stable: the record's seq and the action's rank within it.
	ID       string            `json:"id"`
	Template string            `json:"template"`
	Scenario int               `json:"scenario"`
	Type     string            `json:"type"`
	Workflow string            `json:"workflow"`
	Input    map[string]string `json:"input,omitempty"`
	Bindings []Binding         `json:"bindings"`
}

// Result is what applying one record produced.
type Result struct {
	// Changes are every graph change, the record's own then the evaluator's.
	Changes []graph.Change
	// External are the external actions requested.
	External []ExternalAction
}

// New returns an engine over an empty graph.
func New(cfg Config, norm *graph.Normalizer) *Engine {
	return newEngine(cfg, graph.New(norm), norm)
}

func newEngine(cfg Config, g *graph.Graph, norm *graph.Normalizer) *Engine {
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	if norm == nil {
		norm = graph.DefaultNormalizer()
	}
	return &Engine{
		g: g, norm: norm, maxSteps: cfg.MaxSteps,
		templates: map[string]*loaded{},
		matches:   map[string]*match{},
		byAnchor:  map[akey]map[string]struct{}{},
		effects:   map[string]*effect{},
	}
}

// Graph returns the engine's graph for reading (queries, RCA). Callers must
// not change it.
func (e *Engine) Graph() *graph.Graph { return e.g }

// Apply applies one record and evaluates it to a fixpoint.
func (e *Engine) Apply(rec event.Record) error {
	_, err := e.ApplyResult(rec)
	return err
}

// ApplyResult is Apply that also returns what the record produced.
func (e *Engine) ApplyResult(rec event.Record) (Result, error) {
	e.external = nil
	e.seq = rec.Seq
	var res Result
	var changes []graph.Change
	switch rec.Event.Kind {
	case event.KindTemplatePut, event.KindTemplateDelete:
		if rec.Event.Template == nil {
			return res, fmt.Errorf("apply seq %d: %s without template", rec.Seq, rec.Event.Kind)
		}
		// The graph sees every record (today it ignores template kinds and
		// its logical time stays at the previous record's).
		gc, err := e.g.Apply(rec)
		if err != nil {
			return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
		}
		changes = gc
		var tc []graph.Change
		if rec.Event.Kind == event.KindTemplatePut {
			tc, err = e.putTemplate(rec.Event.Template.Name, rec.Event.Template.Body)
		} else {
			tc, err = e.deleteTemplate(rec.Event.Template.Name)
		}
		if err != nil {
			return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
		}
		changes = append(changes, tc...)
	default:
		gc, err := e.g.Apply(rec)
		if err != nil {
			return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
		}
		changes = gc
	}
	all, err := e.run(changes)
	res.Changes = all
	res.External = e.external
	e.external = nil
	if err != nil {
		return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
	}
	return res, nil
}

// run evaluates changes, and the changes they cause, to a fixpoint. It
// works in waves: the anchors of every change of a wave are collected,
// deduplicated and reconciled once each (reconciling reads the current
// graph, so one pass per anchor covers every change that touched it); the
// changes the actions make form the next wave.
func (e *Engine) run(changes []graph.Change) ([]graph.Change, error) {
	all := changes
	wave := changes
	steps := 0
	for len(wave) > 0 {
		steps += len(wave)
		if steps > e.maxSteps {
			return all, fmt.Errorf("%w (%d changes)", ErrNoFixpoint, steps)
		}
		var anchors []anchor
		for _, ch := range wave {
			anchors = e.anchors(ch, anchors)
		}
		sort.Slice(anchors, func(i, j int) bool {
			a, b := anchors[i], anchors[j]
			if a.rule != b.rule {
				return a.rule < b.rule
			}
			if a.entity != b.entity {
				return a.entity < b.entity
			}
			return a.vertex < b.vertex
		})
		var next []graph.Change
		for i, a := range anchors {
			if i > 0 && a == anchors[i-1] {
				continue
			}
			next = append(next, e.reconcile(e.rules[a.rule], a.entity, a.vertex)...)
		}
		all = append(all, next...)
		wave = next
	}
	return all, nil
}

// akey is a binding of a rule's entity to a vertex.
type akey struct {
	r   *rule
	ent string
	v   graph.VertexID
}

type anchor struct {
	rule   int
	entity string
	vertex graph.VertexID
}

// anchors appends the anchors of a change: every (clause, entity, vertex)
// whose matches the change may have made start or stop holding.
func (e *Engine) anchors(ch graph.Change, anchors []anchor) []anchor {
	if len(e.rules) == 0 {
		return anchors
	}
	switch ch.Op {
	case graph.VertexAdded, graph.VertexUpdated, graph.VertexDeleted:
		if ch.Vertex == nil {
			return anchors
		}
		id := ch.Vertex.ID
		var neigh []graph.Edge // loaded lazily
		neighLoaded := false
		for _, ri := range e.idx.forVertex(ch.Vertex) {
			r := e.rules[ri]
			for _, ent := range r.c.Positive {
				// Matches through the vertex change only if whether it
				// fits the entity changed (added, deleted, or a filtered
				// property moved); edges are changes of their own.
				te := r.ents[ent]
				if matchesVertex(te, ch.Vertex) != (ch.Prev != nil && matchesVertex(te, ch.Prev)) {
					anchors = append(anchors, anchor{ri, ent, id})
				}
			}
			// A vertex bound only inside a negation changes the truth of
			// the matches of its neighbours.
			for _, t := range r.neg {
				for side, ent := range []string{t.Source, t.Target} {
					if r.posSet[ent] {
						continue
					}
					te := r.ents[ent]
					if matchesVertex(te, ch.Vertex) == (ch.Prev != nil && matchesVertex(te, ch.Prev)) {
						continue
					}
					if !neighLoaded {
						neigh = append(e.g.Out(id), e.g.In(id)...)
						neighLoaded = true
					}
					for _, ed := range neigh {
						if ed.Relationship != t.Label {
							continue
						}
						if side == 0 && ed.From == id && r.posSet[t.Target] {
							anchors = append(anchors, anchor{ri, t.Target, ed.To})
						}
						if side == 1 && ed.To == id && r.posSet[t.Source] {
							anchors = append(anchors, anchor{ri, t.Source, ed.From})
						}
					}
				}
			}
		}
	case graph.EdgeAdded, graph.EdgeUpdated, graph.EdgeDeleted:
		if ch.Edge == nil {
			return anchors
		}
		ed := ch.Edge
		if ch.PrevEdge != nil && ch.PrevEdge.IsDeleted == ed.IsDeleted {
			return anchors // only a timestamp moved
		}
		vcache := map[graph.VertexID]*graph.Vertex{}
		for _, ri := range e.idx.byLabel[ed.Relationship] {
			r := e.rules[ri]
			for _, t := range r.c.Terms {
				if t.IsEntity() || t.Label != ed.Relationship {
					continue
				}
				if r.posSet[t.Source] && e.mayMatch(r, t.Source, ed.From, vcache) {
					anchors = append(anchors, anchor{ri, t.Source, ed.From})
				}
				if r.posSet[t.Target] && e.mayMatch(r, t.Target, ed.To, vcache) {
					anchors = append(anchors, anchor{ri, t.Target, ed.To})
				}
			}
		}
	}
	return anchors
}

// mayMatch reports whether a match of r can bind entity to v: v fits the
// entity now, or a stored match binds it (and may have to be undone).
func (e *Engine) mayMatch(r *rule, entity string, v graph.VertexID, cache map[graph.VertexID]*graph.Vertex) bool {
	if len(e.byAnchor[akey{r, entity, v}]) > 0 {
		return true
	}
	vx, ok := cache[v]
	if !ok {
		if x, found := e.g.Vertex(v); found {
			vx = &x
		}
		cache[v] = vx
	}
	return matchesVertex(r.ents[entity], vx)
}

// reconcile compares the matches of r that bind entity to v now with those
// stored, and runs UNDO then DO for the difference.
func (e *Engine) reconcile(r *rule, entity string, v graph.VertexID) []graph.Change {
	current := map[string][]Binding{}
	e.enumerate(r, entity, v, func(b []Binding) {
		current[matchKey(r, b)] = b
	})
	var undo []string
	for k := range e.byAnchor[akey{r, entity, v}] {
		if _, ok := current[k]; !ok {
			undo = append(undo, k)
		}
	}
	var do []string
	for k := range current {
		if _, ok := e.matches[k]; !ok {
			do = append(do, k)
		}
	}
	sort.Strings(undo)
	sort.Strings(do)
	var out []graph.Change
	for _, k := range undo {
		out = append(out, e.undo(e.matches[k])...)
	}
	for _, k := range do {
		out = append(out, e.do(&match{key: k, rule: r, bindings: current[k]})...)
	}
	return out
}

func matchKey(r *rule, b []Binding) string {
	var sb strings.Builder
	sb.WriteString(r.tplName)
	sb.WriteByte(0)
	sb.WriteString(strconv.Itoa(r.scenario))
	sb.WriteByte('/')
	sb.WriteString(strconv.Itoa(r.clause))
	for _, x := range b {
		sb.WriteByte(0)
		sb.WriteString(x.Entity)
		sb.WriteByte('=')
		sb.WriteString(strconv.FormatInt(int64(x.Vertex), 10))
	}
	return sb.String()
}

func (e *Engine) addMatch(m *match) {
	e.matches[m.key] = m
	for _, b := range m.bindings {
		ak := akey{m.rule, b.Entity, b.Vertex}
		s := e.byAnchor[ak]
		if s == nil {
			s = map[string]struct{}{}
			e.byAnchor[ak] = s
		}
		s[m.key] = struct{}{}
	}
}

func (e *Engine) removeMatch(m *match) {
	delete(e.matches, m.key)
	for _, b := range m.bindings {
		ak := akey{m.rule, b.Entity, b.Vertex}
		if s := e.byAnchor[ak]; s != nil {
			delete(s, m.key)
			if len(s) == 0 {
				delete(e.byAnchor, ak)
			}
		}
	}
}
