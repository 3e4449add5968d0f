package template

import (
	"regexp"
	"sort"
	"strings"
)

// Template types, as in Vitrage's metadata.type.
const (
	TypeStandard    = "standard"
	TypeDefinition  = "definition"
	TypeEquivalence = "equivalence"
)

// Action types.
const (
	ActionRaiseAlarm     = "raise_alarm"
	ActionSetState       = "set_state"
	ActionAddCausal      = "add_causal_relationship"
	ActionMarkDown       = "mark_down"
	ActionExecuteMistral = "execute_mistral"
)

// Template is a parsed, validated template of any version.
type Template struct {
	Name        string
	Description string
	Version     int
	Type        string
	// Entities by their template id (v2 template_id, v3 entity key).
	Entities map[string]*Entity
	// Relationships by template id (v2 only; v3 writes them in conditions).
	Relationships map[string]Relationship
	Includes      []string
	Scenarios     []Scenario
	// Equivalences lists groups of entities that mean the same alarm (v2
	// equivalence templates). Kept for validation and display.
	Equivalences [][]*Entity
}

// EntityIDs returns the template's entity ids, sorted.
func (t *Template) EntityIDs() []string {
	ids := make([]string, 0, len(t.Entities))
	for id := range t.Entities {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Entity is a property filter over graph vertices.
type Entity struct {
	ID string
	// Props are exact-match filters (key -> value).
	Props map[string]string
	// Regex are the ".regex" filters, key without the suffix.
	Regex map[string]*regexp.Regexp
	// keys is the sorted union of Props and Regex keys, for a stable match order.
	keys []string
}

// Category returns the entity's category filter ("" when unconstrained).
func (e *Entity) Category() string { return e.Props["category"] }

// caseInsensitive lists the filter keys whose values are compared ignoring
// case: datasources report states and severities in either case.
var caseInsensitive = map[string]bool{
	"category": true, "state": true, "severity": true,
	"aggregated_state": true, "operational_state": true,
	"vitrage_aggregated_state": true, "vitrage_operational_state": true,
	"vitrage_category": true, "operational_severity": true,
	"vitrage_operational_severity": true, "aggregated_severity": true,
	"vitrage_aggregated_severity": true,
}

// Matches reports whether the property getter satisfies every filter of the
// entity. get returns a vertex's value for a template key and whether the
// vertex has it.
func (e *Entity) Matches(get func(key string) (string, bool)) bool {
	for _, k := range e.keys {
		v, ok := get(k)
		if want, exact := e.Props[k]; exact {
			if !ok {
				return false
			}
			if caseInsensitive[k] {
				if !strings.EqualFold(v, want) {
					return false
				}
			} else if v != want {
				return false
			}
		}
		if re, isRe := e.Regex[k]; isRe {
			if !ok || !re.MatchString(v) {
				return false
			}
		}
	}
	return true
}

// Check is one key of an entity's filter, as Matches applies it.
type Check struct {
	Key string
	// Exact says the value must equal Want (ignoring case when Fold).
	Exact, Fold bool
	Want        string
	// Re, when not nil, must match the value.
	Re *regexp.Regexp
}

// Checks returns the entity's filters in the order Matches applies them,
// so that a matcher can resolve each key once: a getter passes every check
// exactly when Matches reports true for it.
func (e *Entity) Checks() []Check {
	out := make([]Check, 0, len(e.keys))
	for _, k := range e.keys {
		c := Check{Key: k, Re: e.Regex[k]}
		c.Want, c.Exact = e.Props[k]
		c.Fold = c.Exact && caseInsensitive[k]
		out = append(out, c)
	}
	return out
}

func (e *Entity) finish() {
	seen := map[string]bool{}
	for k := range e.Props {
		seen[k] = true
	}
	for k := range e.Regex {
		seen[k] = true
	}
	e.keys = make([]string, 0, len(seen))
	for k := range seen {
		e.keys = append(e.keys, k)
	}
	sort.Strings(e.keys)
}

// Relationship is a v2 relationship definition.
type Relationship struct {
	ID, Source, Target, Label string
}

// Term is one literal of a clause: an entity that must exist (Label == "",
// Target == ""), or an edge Source -[Label]-> Target. A negated term must not
// hold.
type Term struct {
	Negated bool
	Source  string
	Label   string
	Target  string
}

// IsEntity reports whether the term only asks for an entity.
func (t Term) IsEntity() bool { return t.Label == "" && t.Target == "" }

func (t Term) String() string {
	s := t.Source
	if !t.IsEntity() {
		s += " [" + t.Label + "] " + t.Target
	}
	if t.Negated {
		s = "NOT " + s
	}
	return s
}

// Clause is a conjunction of terms.
type Clause struct {
	Terms []Term
	// Positive lists the entity ids bound by non-negated terms, sorted.
	Positive []string
}

// Scenario is a condition in DNF and the actions to run while it holds.
type Scenario struct {
	Index     int
	Condition string
	Clauses   []Clause
	Actions   []Action
}

// Action is one action of a scenario.
type Action struct {
	Type   string
	Target string // entity id
	Source string // entity id (add_causal_relationship)
	// Alarm fields (raise_alarm).
	AlarmName    string
	Severity     string
	CausingAlarm string
	// State (set_state).
	State string
	// Workflow and Input (execute_mistral), kept for the notifier.
	Workflow string
	Input    map[string]string
	// Properties are any further properties of the action, as written.
	Properties map[string]string
}
