// Package static is the datasource of hand-written topology: YAML files in
// the format of Vitrage's static datasource (a `metadata` section, then
// `definitions.entities` and `definitions.relationships`), for resources no
// API reports (switches, racks, zones) and for relations to resources that
// other datasources report (Config.References: an entry of such a type only
// names the entity, as Vitrage makes it a placeholder).
//
// Parse and Resolve are pure, so the template-test runner turns the same
// files, with the same references, into the same full pull (package
// drivers/pull) as the driver does. The driver re-reads its directory on
// every scheduled pull and when a file changes (Watch), and hands the
// runner in package drivers a full "get all" of every file.
//
// The package imports only the event envelope and YAML (not package drivers
// and its metrics), so the pure packages of graph/ can import it
// (TestImportsStayPure).
package static

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/internal/event"
)

// MaxFileBytes bounds one topology file.
const MaxFileBytes = 8 << 20

// ErrInvalid is wrapped by every error of Parse.
var ErrInvalid = errors.New("invalid static topology")

// Topology is one parsed file.
type Topology struct {
	Metadata      Metadata
	Entities      []Entity
	Relationships []Relationship
}

// Metadata is the file's `metadata` section.
type Metadata struct {
	Name        string
	Description string
}

// Entity is one item of `definitions.entities`. Every key other than
// static_id, type, id, name and state is a free property.
type Entity struct {
	StaticID   string
	Type       string
	ID         string
	Name       string
	State      string
	ProjectID  string
	Properties map[string]string
}

// Relationship is one item of `definitions.relationships`: Source
// --RelationshipType--> Target, both named by static_id.
type Relationship struct {
	Source           string
	Target           string
	RelationshipType string
}

// fieldErr names the YAML path of a problem.
func fieldErr(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, path, fmt.Sprintf(format, args...))
}

// Parse reads one static datasource file. Errors name the YAML path of the
// first problems found (all of them, joined) and wrap ErrInvalid.
func Parse(data []byte) (*Topology, error) {
	if len(data) > MaxFileBytes {
		return nil, fieldErr("(file)", "%d bytes exceeds the limit of %d", len(data), MaxFileBytes)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("%w: (file): not YAML: %v", ErrInvalid, err)
	}
	// The rest of the file must be empty: yaml.v3 parses a document at a
	// time, so what follows a "---" is read only here, and garbage there
	// (a file mangled after a stray marker) would otherwise be dropped
	// unread, and its entities deleted by the pull.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, fieldErr("(file)", "holds more than one YAML document")
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: (file): not YAML after the first document: %v", ErrInvalid, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fieldErr("(file)", "must be a YAML mapping with metadata and definitions")
	}
	p := &parser{}
	t := p.topology(root.Content[0])
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return t, nil
}

type parser struct {
	errs []error
	// flat caches each mapping's pairs with its merge keys resolved;
	// merging marks the mappings being resolved (a merge into itself).
	flat    map[*yaml.Node][][2]*yaml.Node
	merging map[*yaml.Node]bool
}

func (p *parser) fail(path, format string, args ...any) {
	if len(p.errs) < 20 {
		p.errs = append(p.errs, fieldErr(path, format, args...))
	}
}

// pairs returns the key/value pairs of a mapping node, refusing duplicate keys.
// pairs returns a mapping's key/value pairs with YAML's merge key ("<<")
// resolved as PyYAML (and so Vitrage) resolves it: the mapping's own keys
// win; of the merged mappings, a later "<<" key wins over an earlier one,
// and within one "<<: [*a, *b]" list the earlier mapping wins. A mapping
// merged into itself adds nothing. Each mapping is resolved once.
func (p *parser) pairs(path string, n *yaml.Node) [][2]*yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		p.fail(path, "must be a mapping")
		return nil
	}
	if out, ok := p.flat[n]; ok {
		return out
	}
	if p.merging[n] {
		return nil
	}
	if p.flat == nil {
		p.flat, p.merging = map[*yaml.Node][][2]*yaml.Node{}, map[*yaml.Node]bool{}
	}
	p.merging[n] = true
	defer delete(p.merging, n)
	seen := map[string]bool{}
	var out, merged [][2]*yaml.Node // merged: a later pair wins
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.fail(path, "keys must be strings")
			continue
		}
		if k.Tag == "!!merge" {
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if v.Kind != yaml.SequenceNode {
				merged = append(merged, p.pairs(path+".<<", v)...)
				continue
			}
			for j := len(v.Content) - 1; j >= 0; j-- {
				merged = append(merged, p.pairs(path+".<<", v.Content[j])...)
			}
			continue
		}
		if seen[k.Value] {
			p.fail(path+"."+k.Value, "is given twice")
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	for i := len(merged) - 1; i >= 0; i-- {
		if k := merged[i][0].Value; !seen[k] {
			seen[k] = true
			out = append(out, merged[i])
		}
	}
	p.flat[n] = out
	return out
}

func (p *parser) scalar(path string, n *yaml.Node) (string, bool) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		p.fail(path, "must be a scalar (string, number or boolean)")
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

func (p *parser) topology(n *yaml.Node) *Topology {
	t := &Topology{}
	var haveMeta, haveDefs bool
	for _, kv := range p.pairs("", n) {
		switch k, v := kv[0].Value, kv[1]; k {
		case "metadata":
			haveMeta = true
			p.metadata(v, &t.Metadata)
		case "definitions":
			haveDefs = true
			p.definitions(v, t)
		default:
			p.fail(k, "unknown section (want metadata and definitions)")
		}
	}
	if !haveMeta {
		p.fail("metadata", "is required (a file without it is not in the static datasource format)")
	}
	if !haveDefs {
		p.fail("definitions", "is required")
	}
	if len(p.errs) == 0 {
		p.check(t)
	}
	return t
}

func (p *parser) metadata(n *yaml.Node, m *Metadata) {
	if n.Tag == "!!null" {
		return
	}
	for _, kv := range p.pairs("metadata", n) {
		path := "metadata." + kv[0].Value
		switch kv[0].Value {
		case "name":
			m.Name, _ = p.scalar(path, kv[1])
		case "description":
			m.Description, _ = p.scalar(path, kv[1])
		default:
			// Vitrage ignores other metadata keys (version, ...); so do we,
			// but they must still be scalars or plain structures.
		}
	}
}

func (p *parser) definitions(n *yaml.Node, t *Topology) {
	for _, kv := range p.pairs("definitions", n) {
		k, v := kv[0].Value, kv[1]
		path := "definitions." + k
		switch k {
		case "entities":
			if v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				p.fail(path, "must be a list")
				continue
			}
			for i, item := range v.Content {
				t.Entities = append(t.Entities, p.entity(fmt.Sprintf("%s[%d]", path, i), item))
			}
		case "relationships":
			if v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.SequenceNode {
				p.fail(path, "must be a list")
				continue
			}
			for i, item := range v.Content {
				t.Relationships = append(t.Relationships, p.relationship(fmt.Sprintf("%s[%d]", path, i), item))
			}
		default:
			p.fail(path, "unknown key (want entities and relationships)")
		}
	}
}

func (p *parser) entity(path string, n *yaml.Node) Entity {
	var e Entity
	for _, kv := range p.pairs(path, n) {
		k := kv[0].Value
		v, ok := p.scalar(path+"."+k, kv[1])
		if !ok {
			continue
		}
		switch k {
		case "static_id":
			e.StaticID = v
		case "type":
			e.Type = v
		case "id":
			e.ID = v
		case "name":
			e.Name = v
		case "state":
			e.State = v
		case "project_id":
			e.ProjectID = v
		case "category":
			if !strings.EqualFold(v, event.CategoryResource) {
				p.fail(path+".category", "static entities are resources; %q is not allowed", v)
			}
		default:
			if e.Properties == nil {
				e.Properties = map[string]string{}
			}
			e.Properties[k] = v
		}
	}
	for _, f := range [...]struct{ name, v string }{{"static_id", e.StaticID}, {"type", e.Type}, {"id", e.ID}} {
		if f.v == "" {
			p.fail(path+"."+f.name, "is required")
		}
	}
	return e
}

func (p *parser) relationship(path string, n *yaml.Node) Relationship {
	var r Relationship
	for _, kv := range p.pairs(path, n) {
		k := kv[0].Value
		v, ok := p.scalar(path+"."+k, kv[1])
		if !ok {
			continue
		}
		switch k {
		case "source":
			r.Source = v
		case "target":
			r.Target = v
		case "relationship_type":
			r.RelationshipType = v
		default:
			p.fail(path+"."+k, "unknown key (want source, target and relationship_type)")
		}
	}
	for _, f := range [...]struct{ name, v string }{{"source", r.Source}, {"target", r.Target}, {"relationship_type", r.RelationshipType}} {
		if f.v == "" {
			p.fail(path+"."+f.name, "is required")
		}
	}
	return r
}

// check applies the rules across items: unique static ids, unique
// (type, id), relationships between known static ids, and the limits of the
// event envelope.
func (p *parser) check(t *Topology) {
	byStatic := map[string]int{}
	byKey := map[string]int{}
	for i, e := range t.Entities {
		path := fmt.Sprintf("definitions.entities[%d]", i)
		if j, dup := byStatic[e.StaticID]; dup {
			p.fail(path+".static_id", "%q is also the static_id of definitions.entities[%d]", e.StaticID, j)
		}
		byStatic[e.StaticID] = i
		key := e.Type + "\x00" + e.ID
		if j, dup := byKey[key]; dup {
			p.fail(path, "type %q id %q is also definitions.entities[%d]", e.Type, e.ID, j)
		}
		byKey[key] = i
		ent := entityOf(e)
		if err := (event.Event{V: event.Version, EventID: "x", Source: "static", Kind: event.KindEntityUpsert,
			ObservedAt: time.Unix(1, 0), Entity: &ent}).Validate(); err != nil {
			p.fail(path, "%v", err)
		}
	}
	seenRel := map[Relationship]int{}
	for i, r := range t.Relationships {
		path := fmt.Sprintf("definitions.relationships[%d]", i)
		if _, ok := byStatic[r.Source]; !ok {
			p.fail(path+".source", "no entity has static_id %q", r.Source)
		}
		if _, ok := byStatic[r.Target]; !ok {
			p.fail(path+".target", "no entity has static_id %q", r.Target)
		}
		if j, dup := seenRel[r]; dup {
			p.fail(path, "repeats definitions.relationships[%d]", j)
		}
		seenRel[r] = i
		if err := checkText(r.RelationshipType); err != nil {
			p.fail(path+".relationship_type", "%v", err)
		}
	}
}

func checkText(s string) error {
	if len(s) > event.MaxIDLen {
		return fmt.Errorf("is %d bytes long, over the limit of %d", len(s), event.MaxIDLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

func entityOf(e Entity) event.Entity {
	out := event.Entity{
		Category:  event.CategoryResource,
		Type:      e.Type,
		ID:        e.ID,
		Name:      e.Name,
		State:     e.State,
		ProjectID: e.ProjectID,
	}
	if len(e.Properties) > 0 {
		out.Properties = make(map[string]string, len(e.Properties))
		for k, v := range e.Properties {
			out.Properties[k] = v
		}
	}
	return out
}

// Entities returns the resources of the topologies as the static source
// reports them: one entity per (type, id), each relationship as a Relation
// on its source entity with Direction Out, the relationship's target
// reported as an entity too. Entities of several files with the same (type,
// id) are merged: their relations are united and, for a name, state,
// project_id or property given by two files, the later file wins. The order is deterministic (by type, id;
// relations by relationship, type, id, direction).
func Entities(tops ...*Topology) []event.Entity {
	out, _ := Resolve(nil, tops...) // without references nothing is refused
	return out
}

// ErrReference marks a topology that uses a referenced type (Config's
// References) in a way the static source cannot report.
var ErrReference = errors.New("invalid use of a referenced entity type")

// Resolve is Entities where the types in references belong to other
// datasources (Vitrage makes such static entries placeholders): an entry
// of one of them only names that entity for relationships. It is not
// reported, so the static source never sets its name, state or properties
// and never deletes it; each relationship with it is reported by its
// other end, with Direction In when the referenced entity is the source.
// An entry of a referenced type that sets anything but its type and id,
// and a relationship whose two ends are both referenced, are refused
// (ErrReference): the static source would have nothing to report them on.
func Resolve(references []string, tops ...*Topology) ([]event.Entity, error) {
	isRef := make(map[string]bool, len(references))
	for _, t := range references {
		isRef[t] = true
	}
	byKey := map[string]*event.Entity{}
	var keys []string
	for _, t := range tops {
		if t == nil {
			continue
		}
		static := make(map[string]string, len(t.Entities)) // static_id -> key
		for _, e := range t.Entities {
			key := e.Type + "\x00" + e.ID
			static[e.StaticID] = key
			if isRef[e.Type] && (e.Name != "" || e.State != "" || e.ProjectID != "" || len(e.Properties) > 0) {
				return nil, fmt.Errorf("%w: entity %s is a %s, which another datasource reports: "+
					"it may give only static_id, type and id", ErrReference, e.StaticID, e.Type)
			}
			cur, ok := byKey[key]
			if !ok {
				ent := entityOf(e)
				byKey[key] = &ent
				keys = append(keys, key)
				continue
			}
			if e.Name != "" {
				cur.Name = e.Name
			}
			if e.State != "" {
				cur.State = e.State
			}
			if e.ProjectID != "" {
				cur.ProjectID = e.ProjectID
			}
			for k, v := range e.Properties {
				if cur.Properties == nil {
					cur.Properties = map[string]string{}
				}
				cur.Properties[k] = v
			}
		}
		for _, r := range t.Relationships {
			src, dst := byKey[static[r.Source]], byKey[static[r.Target]]
			if src == nil || dst == nil {
				continue // Parse refuses this; a hand-built Topology may not
			}
			carrier, rel := src, event.Relation{Relationship: r.RelationshipType, Category: event.CategoryResource,
				Type: dst.Type, ID: dst.ID, Direction: event.Out}
			if isRef[src.Type] {
				if isRef[dst.Type] {
					return nil, fmt.Errorf("%w: relationship %s -[%s]-> %s: both ends are of types another datasource reports; "+
						"one end must be an entity of the static source", ErrReference, r.Source, r.RelationshipType, r.Target)
				}
				carrier, rel = dst, event.Relation{Relationship: r.RelationshipType, Category: event.CategoryResource,
					Type: src.Type, ID: src.ID, Direction: event.In}
			}
			if !hasRelation(carrier.Relations, rel) {
				carrier.Relations = append(carrier.Relations, rel)
			}
		}
	}
	sort.Strings(keys)
	out := make([]event.Entity, 0, len(keys))
	for _, k := range keys {
		e := byKey[k]
		if isRef[e.Type] {
			continue
		}
		sort.Slice(e.Relations, func(i, j int) bool {
			a, b := e.Relations[i], e.Relations[j]
			if a.Relationship != b.Relationship {
				return a.Relationship < b.Relationship
			}
			if a.Type != b.Type {
				return a.Type < b.Type
			}
			if a.ID != b.ID {
				return a.ID < b.ID
			}
			return a.Direction < b.Direction
		})
		out = append(out, *e)
	}
	return out, nil
}

func hasRelation(rs []event.Relation, r event.Relation) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}
