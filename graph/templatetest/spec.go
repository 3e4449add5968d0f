package templatetest

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Spec is one test file.
type Spec struct {
	// Templates are template files, relative to the spec file, each a
	// path or {path, params} (TemplateRef). Definition templates are
	// loaded before the templates that include them.
	Templates []TemplateRef `yaml:"templates"`
	// Topology lists static-datasource files (Vitrage format), relative to
	// the spec file, loaded as one full sync of source "static" after the
	// templates.
	Topology []string `yaml:"topology"`
	// References are entity types other datasources report, as in the
	// static driver's `references`: topology entries of these types only
	// name the entity, and update/delete events of them are reported by
	// the type's datasource (the part before the first dot: "nova" for
	// "nova.host"; the whole type when it has no dot), not by "static", so
	// a later sync leaves them alone. Types must be distinct, and none may
	// map to the source "static".
	References []string `yaml:"references"`
	// Start is the logical time of the first record (default 2026-01-01T00:00:00Z).
	Start string `yaml:"start"`
	// Steps run in order; each applies its events then checks its expectations.
	Steps []Step `yaml:"steps"`
}

// TemplateRef is a template file of a spec, with the values of its
// parameters (get_param), as `causeway templates add --params` gives
// them. In YAML it is the file's path, or a mapping {path, params} when
// there are values to give.
type TemplateRef struct {
	Path   string            `yaml:"path"`
	Params map[string]string `yaml:"params"`
}

// UnmarshalYAML reads a path, or a mapping of path and params.
func (t *TemplateRef) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*t = TemplateRef{Path: n.Value}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a template is a path, or a mapping of path and params", n.Line)
	}
	// The strict decoder's KnownFields does not reach a node decoded by
	// hand: unknown keys are refused here.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "path" && k != "params" {
			return fmt.Errorf("line %d: unknown key %q of a template (path, params)", n.Content[i].Line, k)
		}
	}
	type plain TemplateRef
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	if p.Path == "" {
		return fmt.Errorf("line %d: a template mapping needs its path", n.Line)
	}
	*t = TemplateRef(p)
	return nil
}

// Step is a group of events and what must hold after them.
type Step struct {
	Name   string  `yaml:"name"`
	Events []Event `yaml:"events"`
	Expect *Expect `yaml:"expect"`
}

// Event is one timeline entry; exactly one field is set.
type Event struct {
	// Alarm raises (or updates) an alarm from a datasource.
	Alarm *AlarmEvent `yaml:"alarm"`
	// Clear clears an alarm ("type/id").
	Clear string `yaml:"clear"`
	// Update upserts a resource: fields over the resource as last reported.
	Update *UpdateEvent `yaml:"update"`
	// Delete deletes a resource ("type/id").
	Delete string `yaml:"delete"`
	// TemplateAdd puts a template file (relative to the spec): a path or
	// {path, params} (TemplateRef).
	TemplateAdd TemplateRef `yaml:"template_add"`
	// TemplateDelete deletes a template by name.
	TemplateDelete string `yaml:"template_delete"`
	// Sync runs a full sync of source "static" with these topology files.
	Sync []string `yaml:"sync"`
}

// AlarmEvent is an alarm raised on a resource.
type AlarmEvent struct {
	Type     string            `yaml:"type"`
	ID       string            `yaml:"id"`
	Name     string            `yaml:"name"`
	Severity string            `yaml:"severity"`
	On       string            `yaml:"on"` // "type/id" of the resource
	Props    map[string]string `yaml:"properties"`
	// ObservedAt is an offset from the step's logical time ("-10m").
	ObservedAt string `yaml:"observed_at"`
}

// UpdateEvent updates a resource.
type UpdateEvent struct {
	Entity     string            `yaml:"entity"` // "type/id"
	State      string            `yaml:"state"`
	Name       string            `yaml:"name"`
	Props      map[string]string `yaml:"properties"`
	ObservedAt string            `yaml:"observed_at"`
}

// Expect lists what must hold. Alarms, Causes and MarkedDown are complete
// sets (of live items); States, DeducedStates, Deleted, Present and RCA
// check only what they name.
type Expect struct {
	Alarms        *[]Alarm          `yaml:"alarms"`
	Causes        *[]Cause          `yaml:"causes"`
	MarkedDown    *[]string         `yaml:"marked_down"`
	States        map[string]string `yaml:"states"`
	DeducedStates map[string]string `yaml:"deduced_states"`
	Deleted       []string          `yaml:"deleted"`
	Present       []string          `yaml:"present"`
	RCA           []RCA             `yaml:"rca"`
}

// Alarm is a deduced alarm: its name, the resource it is on, its severity.
type Alarm struct {
	Name     string `yaml:"name"`
	On       string `yaml:"on"`
	Severity string `yaml:"severity"`
}

// Cause is a live `causes` edge between two alarms. Alarms are named
// "type/id" for datasource alarms and "vitrage:NAME@type/id" for deduced
// alarms (NAME on the resource type/id).
type Cause struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// RCA names an alarm and the root causes it must have (alarms with no live
// cause that reach it through `causes` edges; the alarm itself when none).
type RCA struct {
	Alarm string   `yaml:"alarm"`
	Roots []string `yaml:"roots"`
}

// ParseSpec decodes a spec strictly (unknown keys are errors).
func ParseSpec(data []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	seen := map[string]bool{}
	for i, t := range s.References {
		src, _, _ := strings.Cut(t, ".")
		switch {
		case t == "":
			return nil, fmt.Errorf("references[%d]: empty type", i)
		case seen[t]:
			return nil, fmt.Errorf("references[%d]: %q listed twice", i, t)
		case src == "static":
			return nil, fmt.Errorf("references[%d]: %q would be reported by source static, as the topology is", i, t)
		}
		seen[t] = true
	}
	for i, st := range s.Steps {
		for j, ev := range st.Events {
			n := 0
			if ev.Alarm != nil {
				n++
			}
			for _, x := range []string{ev.Clear, ev.Delete, ev.TemplateAdd.Path, ev.TemplateDelete} {
				if x != "" {
					n++
				}
			}
			if ev.Update != nil {
				n++
			}
			if ev.Sync != nil {
				n++
			}
			if n != 1 {
				return nil, fmt.Errorf("steps[%d].events[%d]: exactly one of alarm, clear, update, delete, template_add, template_delete, sync must be set", i, j)
			}
		}
	}
	return &s, nil
}
