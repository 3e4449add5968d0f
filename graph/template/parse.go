package template

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options tune Parse.
type Options struct {
	// Params gives values for v3 `parameters` (they win over defaults).
	Params map[string]string
	// Definitions resolves a v2 `includes` name to a loaded definition
	// template. Nil means no definition template is known.
	Definitions func(name string) (*Template, bool)
	// Lenient skips the refusals that builds of apply semantics below 3
	// (evaluator.Semantics) did not make — MaxTerms, MaxTemplateTerms, a
	// regex that compiles only once anchored, a clause whose positive terms
	// are not connected (10203) — so that a template such a build accepted parses to what it parsed to
	// then. It is for rebuilding a state computed under those semantics
	// (evaluator.Restore); new input is never parsed leniently.
	Lenient bool
	// TypedScalars decodes the body as builds of apply semantics below 4
	// did, with YAML's types: `1.10` read as "1.1", `0123` as "83", a
	// date refused as a value, and a version 3 value that YAML types as a
	// number (an entity property, an alarm name) refused. Like Lenient, it
	// is for rebuilding a state computed under those semantics; new input
	// is decoded as Vitrage decodes it, every scalar as its text.
	TypedScalars bool
	// Stored reads a template from the event log: it skips the refusals
	// made only of new templates (Validate, and Parse for `templates
	// validate|add`), each a template Vitrage refuses or reads otherwise
	// that builds before them loaded: a get_param call that is not
	// get_param(name) (code 162), an empty parameter value or default
	// (163), a version written other than 1, 2 or 3 (63), a version 3
	// Mistral input with a comma and no function call (138), a function
	// in a version 1 template (137). A template the log holds was
	// accepted by the build that added it, and is read as that build
	// read it, so a replay of the log computes what it did.
	Stored bool
}

// MaxSize is the largest template body Parse accepts.
const MaxSize = 1 << 20

var templateIDRe = regexp.MustCompile(`^_*[a-zA-Z]+\w*`)

// Parse parses and validates a template of any version. A refused template
// yields a *ValidationError listing every problem.
func Parse(body []byte, opts Options) (*Template, error) {
	t, ps := parse(body, opts)
	if len(ps.list) > 0 {
		name := ""
		if t != nil {
			name = t.Name
		}
		return nil, &ValidationError{Name: name, Problems: ps.list}
	}
	return t, nil
}

// Validate returns every problem of a template; none means it loads.
func Validate(body []byte, opts Options) []Problem {
	_, ps := parse(body, opts)
	return ps.list
}

// Header reads only the metadata of a template: its name, version and type.
// It is meant for ordering definition templates before the templates that
// include them.
// Scalars read as Parse reads them (each as its text), so the name is the
// one Parse gives.
func Header(body []byte) (name string, version int, typ string, err error) {
	doc, err := decodeText(body)
	if err != nil {
		return "", 0, "", fmt.Errorf("decode template metadata: %w", err)
	}
	top, _ := asMap(doc)
	md, _ := asMap(top["metadata"])
	name, _ = scalar(md["name"])
	vs, _ := scalar(md["version"])
	version = 1
	if vs != "" {
		version, _ = strconv.Atoi(vs)
	}
	typ, _ = scalar(md["type"])
	return name, version, typ, nil
}

type parser struct {
	ps   problems
	t    *Template
	opts Options
	v3   bool
	// dnfTerms counts the DNF terms of the conditions parsed so far
	// (MaxTemplateTerms).
	dnfTerms int
}

func parse(body []byte, opts Options) (*Template, *problems) {
	p := &parser{opts: opts, t: &Template{
		Entities:      map[string]*Entity{},
		Relationships: map[string]Relationship{},
	}}
	if len(body) > MaxSize {
		p.ps.add(4, "", fmt.Sprintf("template larger than %d bytes", MaxSize))
		return p.t, &p.ps
	}
	var doc any
	var err error
	if opts.TypedScalars {
		err = yaml.Unmarshal(body, &doc)
	} else {
		doc, err = decodeText(body)
	}
	if err != nil {
		p.ps.add(5, "", err.Error())
		return p.t, &p.ps
	}
	top, ok := asMap(doc)
	if !ok {
		p.ps.add(4, "", "template must be a mapping")
		return p.t, &p.ps
	}
	md, ok := asMap(top["metadata"])
	if !ok {
		p.ps.add(62, "metadata", "")
		return p.t, &p.ps
	}
	p.t.Version = 1
	if v, present := md["version"]; present {
		s, _ := scalar(v)
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3 {
			p.ps.add(63, "metadata.version", "")
			return p.t, &p.ps
		}
		if s != strconv.Itoa(n) {
			// Vitrage looks the version up as written among "1",
			// "2" and "3".
			p.refuseNew(63, "metadata.version", fmt.Sprintf(" (got %q; write %d)", s, n))
		}
		p.t.Version = n
	}
	if p.t.Version == 3 {
		p.v3 = true
		p.parseV3(top, md)
	} else {
		p.parseV2(top, md)
	}
	return p.t, &p.ps
}

func (p *parser) parseMetadata(md map[string]any, allowed ...string) {
	p.extraKeys("metadata", md, allowed...)
	name, ok := str(md["name"], !p.v3)
	if !ok || name == "" {
		// Vitrage's message asks for an "id" field, the name's key in
		// its first releases (its version 2 page still shows one); a
		// template that has one is told which key to use instead.
		detail := ""
		if id, hasID := scalar(md["id"]); hasID && md["name"] == nil {
			detail = fmt.Sprintf(" (the template has \"id\": its name is read from \"name\", so write name: %s)", id)
		}
		p.ps.add(60, "metadata.name", detail)
	}
	p.t.Name = name
	p.t.Description, _ = str(md["description"], true)
	typ, present := md["type"]
	switch {
	case !present && p.t.Version == 1:
		p.t.Type = TypeStandard
	case !present && p.v3:
		// Vitrage's message speaks of version 2 only, but its version 3
		// schema asks for the type as well.
		p.ps.add(64, "metadata.type", " (a version 3 template needs one as well: type: standard)")
	case !present:
		p.ps.add(64, "metadata.type", "")
	default:
		s, _ := scalar(typ)
		switch s {
		case TypeStandard, TypeDefinition, TypeEquivalence:
			p.t.Type = s
		default:
			if p.v3 {
				// Vitrage's v3 schema says 64 here.
				p.ps.add(64, "metadata.type", fmt.Sprintf(" (got %q; version 3 supports only type: standard)", s))
			} else {
				p.ps.add(65, "metadata.type", "")
			}
		}
		// Vitrage's v3 schema lets other types through but only runs
		// standard ones; refusing them says so instead of ignoring them.
		if p.v3 && p.t.Type != "" && p.t.Type != TypeStandard {
			p.ps.add(65, "metadata.type", " (version 3 supports only standard)")
		}
	}
}

// refuseNew records a problem of a new template only (Options.Stored).
func (p *parser) refuseNew(code int, path, detail string) {
	if !p.opts.Stored {
		p.ps.add(code, path, detail)
	}
}

func (p *parser) extraKeys(path string, m map[string]any, allowed ...string) {
	for _, k := range sortedKeys(m) {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			p.ps.add(4, join(path, k), "extra keys not allowed")
		}
	}
}

// ---- version 3 ----

func (p *parser) parseV3(top, _ map[string]any) {
	p.extraKeys("", top, "metadata", "parameters", "entities", "scenarios")
	p.substituteParams(top)
	md, _ := asMap(top["metadata"])
	p.parseMetadata(md, "version", "name", "description", "type")

	ents, present := top["entities"]
	em, ok := asMap(ents)
	switch {
	case !present:
		p.ps.add(10000, "entities", "")
	case !ok:
		p.ps.add(4, "entities", "entities must be a mapping of entity id to properties")
	}
	for _, id := range sortedKeys(em) {
		path := "entities." + id
		props, ok := asMap(em[id])
		if !ok {
			p.ps.add(4, path, "entity must be a mapping of property to value")
			continue
		}
		p.t.Entities[id] = p.entity(id, path, props, true)
	}

	scs, present := top["scenarios"]
	sl, ok := scs.([]any)
	switch {
	case !present:
		p.ps.add(80, "scenarios", "")
		return
	case !ok:
		p.ps.add(4, "scenarios", "scenarios must be a list")
		return
	case len(sl) == 0:
		p.ps.add(81, "scenarios", "")
		return
	}
	for i, raw := range sl {
		path := fmt.Sprintf("scenarios[%d]", i)
		sm, ok := asMap(raw)
		if !ok {
			p.ps.add(4, path, "scenario must be a mapping")
			continue
		}
		p.extraKeys(path, sm, "condition", "actions")
		sc := Scenario{Index: i}
		cond, ok := str(sm["condition"], false)
		if !ok {
			p.ps.add(83, path+".condition", "")
		} else {
			sc.Condition = cond
			sc.Clauses = p.condition(path+".condition", cond)
		}
		acts, present := sm["actions"]
		al, ok := acts.([]any)
		switch {
		case !present:
			p.ps.add(84, path+".actions", "")
		case !ok:
			p.ps.add(4, path+".actions", "actions must be a list")
		case len(al) == 0:
			p.ps.add(121, path+".actions", "")
		}
		for j, ra := range al {
			apath := fmt.Sprintf("%s.actions[%d]", path, j)
			if a, ok := p.actionV3(apath, ra); ok {
				sc.Actions = append(sc.Actions, a)
			}
		}
		p.checkScenario(path, &sc)
		p.t.Scenarios = append(p.t.Scenarios, sc)
	}
}

func (p *parser) actionV3(path string, raw any) (Action, bool) {
	m, ok := asMap(raw)
	if !ok || len(m) != 1 {
		p.ps.add(120, path, "")
		return Action{}, false
	}
	var typ string
	for k := range m {
		typ = k
	}
	path = path + "." + typ
	body, ok := asMap(m[typ])
	if !ok {
		p.ps.add(4, path, "action must be a mapping")
		return Action{}, false
	}
	a := Action{Type: typ}
	target := func() {
		v, present := body["target"]
		if !present {
			p.ps.add(10100, path+".target", "")
			return
		}
		s, detail := entityRef(v)
		if _, ok := p.t.Entities[s]; !ok {
			p.ps.add(10101, path+".target", detail)
		}
		a.Target = s
	}
	reqStr := func(key string, code int) string {
		s, ok := str(body[key], false)
		if !ok || s == "" {
			p.ps.add(code, path+"."+key, "")
		}
		return s
	}
	switch typ {
	case ActionRaiseAlarm:
		p.extraKeys(path, body, "target", "alarm_name", "severity", "causing_alarm")
		a.Severity = reqStr("severity", 126)
		target()
		a.AlarmName = reqStr("alarm_name", 10104)
		if v, present := body["causing_alarm"]; present {
			s, detail := entityRef(v)
			if _, ok := p.t.Entities[s]; !ok {
				p.ps.add(10107, path+".causing_alarm", detail)
			}
			a.CausingAlarm = s
		}
	case ActionSetState:
		p.extraKeys(path, body, "target", "state")
		a.State = reqStr("state", 128)
		target()
	case ActionAddCausal:
		p.extraKeys(path, body, "source", "target")
		if v, present := body["source"]; !present {
			p.ps.add(10102, path+".source", "")
		} else {
			s, detail := entityRef(v)
			if _, ok := p.t.Entities[s]; !ok {
				p.ps.add(10103, path+".source", detail)
			}
			a.Source = s
		}
		target()
	case ActionMarkDown:
		p.extraKeys(path, body, "target")
		target()
	case ActionExecuteMistral:
		p.extraKeys(path, body, "workflow", "input")
		a.Workflow = reqStr("workflow", 10105)
		a.Input = p.mistralInput(path+".input", body["input"])
	default:
		p.ps.add(120, path, "")
		return Action{}, false
	}
	return a, true
}

// entityRef reads an action's reference to an entity in a version 3
// template: the id ("" when it is no string), and how a problem about it
// quotes it (what was written instead, when it is no string).
func entityRef(v any) (id, detail string) {
	switch x := v.(type) {
	case string:
		return x, fmt.Sprintf(" (%q)", x)
	case nil:
		return "", " (got nothing)"
	case []any:
		return "", " (got a list)"
	case map[string]any, map[any]any:
		return "", " (got a mapping)"
	}
	// A number or a boolean, as Options.TypedScalars reads them: no id,
	// as builds of that semantics took it.
	s, _ := scalar(v)
	return "", fmt.Sprintf(" (got %s, not a string)", s)
}

func (p *parser) mistralInput(path string, raw any) map[string]string {
	if raw == nil {
		return nil
	}
	m, ok := asMap(raw)
	if !ok {
		p.ps.add(4, path, "input must be a mapping")
		return nil
	}
	out := map[string]string{}
	for _, k := range sortedKeys(m) {
		s, ok := scalar(m[k])
		if !ok {
			p.ps.add(4, join(path, k), "input value must be a scalar")
			continue
		}
		if strings.ContainsAny(s, "()") && !isFunction(s) {
			p.ps.add(138, join(path, k), "")
		} else if p.v3 && strings.Contains(s, ",") && !isFunction(s) {
			// Vitrage's version 3 schema asks a value with a comma
			// to be a function call as well.
			p.refuseNew(138, join(path, k), fmt.Sprintf(" (%q has a comma and is no function call)", s))
		}
		out[k] = s
	}
	return out
}

var functionRe = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z_0-9]*\s*\(.*\)\s*$`)

func isFunction(s string) bool { return functionRe.MatchString(s) }

var getParamRe = regexp.MustCompile(`^\s*get_param\(\s*([^()\s]+)\s*\)\s*$`)

// getParamWordRe finds a value that calls get_param, well formed or not.
var getParamWordRe = regexp.MustCompile(`^\s*get_param(?:[^A-Za-z0-9_]|$)`)

// substituteParams replaces get_param(x) values throughout the template.
func (p *parser) substituteParams(top map[string]any) {
	params := map[string]*string{}
	defaults := map[string]string{}
	if raw, present := top["parameters"]; present {
		pm, ok := asMap(raw)
		if !ok {
			p.ps.add(4, "parameters", "parameters must be a mapping")
		}
		for _, name := range sortedKeys(pm) {
			var val *string
			if def, ok := asMap(pm[name]); ok {
				p.extraKeys("parameters."+name, def, "description", "default")
				if d, present := def["default"]; present {
					if s, ok := scalar(d); ok {
						val = &s
						defaults[name] = s
					}
				}
			} else if pm[name] != nil {
				p.ps.add(4, "parameters."+name, "parameter must be a mapping")
			}
			if v, ok := p.opts.Params[name]; ok {
				v := v
				val = &v
			}
			params[name] = val
		}
	}
	var walk func(path string, v any) any
	walk = func(path string, v any) any {
		switch x := v.(type) {
		case string:
			m := getParamRe.FindStringSubmatch(x)
			if m == nil {
				if getParamWordRe.MatchString(x) {
					// Vitrage refuses a call it cannot read; it was
					// taken as the literal value.
					p.refuseNew(162, path, fmt.Sprintf(" (%q: write get_param(name))", x))
				}
				return x
			}
			if p.t.Version == 1 {
				p.refuseNew(137, path, fmt.Sprintf(" (%q)", x))
			}
			val, defined := params[m[1]]
			if !defined {
				p.ps.add(161, path, fmt.Sprintf(" (%s)", m[1]))
				return x
			}
			if val == nil {
				p.ps.add(163, path, m[1])
				return x
			}
			if *val == "" {
				// Vitrage takes an empty value as none given (the
				// default), and an empty default as none: it is
				// refused rather than read as "" here.
				detail := m[1] + " (its value is empty: give one"
				if d := defaults[m[1]]; d != "" {
					detail += fmt.Sprintf(", or leave it out for the default %q", d)
				}
				p.refuseNew(163, path, detail+")")
			}
			return *val
		case map[string]any:
			for _, k := range sortedKeys(x) {
				x[k] = walk(join(path, k), x[k])
			}
			return x
		case []any:
			for i := range x {
				x[i] = walk(fmt.Sprintf("%s[%d]", path, i), x[i])
			}
			return x
		}
		return v
	}
	for _, k := range sortedKeys(top) {
		if k != "parameters" {
			top[k] = walk(k, top[k])
		}
	}
}

// ---- versions 1 and 2 ----

func (p *parser) parseV2(top, md map[string]any) {
	p.extraKeys("", top, "metadata", "parameters", "definitions", "includes", "scenarios", "equivalences")
	p.substituteParams(top) // Vitrage's version 2 has get_param too
	p.parseMetadata(md, "version", "name", "description", "type", "id")
	if p.t.Type == "" {
		return
	}
	switch p.t.Type {
	case TypeDefinition:
		if _, present := top["includes"]; present {
			p.ps.add(143, "includes", "")
		}
		if _, present := top["scenarios"]; present {
			p.ps.add(143, "scenarios", "")
		}
		defs, ok := asMap(top["definitions"])
		if !ok {
			p.ps.add(21, "definitions", "")
			return
		}
		p.definitions(defs, false)
		return
	case TypeEquivalence:
		p.equivalences(top["equivalences"])
		return
	}
	_, hasIncludes := top["includes"]
	if hasIncludes {
		p.includes(top["includes"])
	}
	if raw, present := top["definitions"]; present {
		defs, ok := asMap(raw)
		if !ok {
			p.ps.add(4, "definitions", "definitions must be a mapping")
		} else {
			p.definitions(defs, hasIncludes)
		}
	} else if !hasIncludes {
		p.ps.add(21, "definitions", "")
	}
	scs, present := top["scenarios"]
	sl, ok := scs.([]any)
	switch {
	case !present:
		p.ps.add(80, "scenarios", "")
		return
	case !ok:
		p.ps.add(4, "scenarios", "scenarios must be a list")
		return
	case len(sl) == 0:
		p.ps.add(81, "scenarios", "")
		return
	}
	for i, raw := range sl {
		path := fmt.Sprintf("scenarios[%d]", i)
		wrap, ok := asMap(raw)
		sm, ok2 := asMap(wrap["scenario"])
		if !ok || !ok2 {
			p.ps.add(82, path, "")
			continue
		}
		path += ".scenario"
		p.extraKeys(path, sm, "condition", "actions")
		sc := Scenario{Index: i}
		cond, ok := str(sm["condition"], false)
		if !ok {
			p.ps.add(83, path+".condition", "")
		} else {
			sc.Condition = cond
			sc.Clauses = p.condition(path+".condition", cond)
		}
		acts, present := sm["actions"]
		al, ok := acts.([]any)
		switch {
		case !present:
			p.ps.add(84, path+".actions", "")
		case !ok:
			p.ps.add(4, path+".actions", "actions must be a list")
		case len(al) == 0:
			p.ps.add(121, path+".actions", "")
		}
		for j, ra := range al {
			apath := fmt.Sprintf("%s.actions[%d]", path, j)
			if a, ok := p.actionV2(apath, ra); ok {
				sc.Actions = append(sc.Actions, a)
			}
		}
		p.checkScenario(path, &sc)
		p.t.Scenarios = append(p.t.Scenarios, sc)
	}
}

func (p *parser) includes(raw any) {
	l, ok := raw.([]any)
	if !ok || len(l) == 0 {
		p.ps.add(140, "includes", "")
		return
	}
	for i, r := range l {
		path := fmt.Sprintf("includes[%d]", i)
		m, _ := asMap(r)
		name, ok := str(m["name"], true)
		if !ok || name == "" {
			p.ps.add(141, path, "")
			continue
		}
		var def *Template
		if p.opts.Definitions != nil {
			def, ok = p.opts.Definitions(name)
		} else {
			ok = false
		}
		if !ok || def == nil || def.Type != TypeDefinition {
			p.ps.add(CodeUnknownInclude, path, fmt.Sprintf(" (%q)", name))
			continue
		}
		p.t.Includes = append(p.t.Includes, name)
		for _, id := range def.EntityIDs() {
			if _, dup := p.t.Entities[id]; dup {
				p.ps.add(2, path, fmt.Sprintf(" (%q)", id))
				continue
			}
			p.t.Entities[id] = def.Entities[id]
		}
		rids := make([]string, 0, len(def.Relationships))
		for id := range def.Relationships {
			rids = append(rids, id)
		}
		sort.Strings(rids)
		for _, id := range rids {
			if _, dup := p.t.Relationships[id]; dup {
				p.ps.add(2, path, fmt.Sprintf(" (%q)", id))
				continue
			}
			p.t.Relationships[id] = def.Relationships[id]
		}
	}
}

func (p *parser) definitions(defs map[string]any, hasIncludes bool) {
	p.extraKeys("definitions", defs, "entities", "relationships")
	rawEnts, present := defs["entities"]
	if !present {
		if !hasIncludes {
			p.ps.add(20, "definitions.entities", "")
		}
	} else {
		el, ok := rawEnts.([]any)
		if !ok {
			p.ps.add(4, "definitions.entities", "entities must be a list")
		} else if len(el) == 0 && !hasIncludes {
			p.ps.add(43, "definitions.entities", "")
		}
		for i, r := range el {
			path := fmt.Sprintf("definitions.entities[%d]", i)
			wrap, _ := asMap(r)
			em, ok := asMap(wrap["entity"])
			if !ok {
				p.ps.add(46, path, "")
				continue
			}
			path += ".entity"
			props := map[string]any{}
			for k, v := range em {
				props[k] = v
			}
			idRaw, present := props["template_id"]
			delete(props, "template_id")
			id, _ := scalar(idRaw)
			if !present {
				p.ps.add(41, path, "")
				continue
			}
			if !templateIDRe.MatchString(id) {
				p.ps.add(1, path+".template_id", fmt.Sprintf(" (%q)", id))
				continue
			}
			path = fmt.Sprintf("definitions.entities[%d](%s)", i, id)
			if _, dup := p.t.Entities[id]; dup {
				p.ps.add(2, path, fmt.Sprintf(" (%q)", id))
				continue
			}
			if _, present := props["category"]; !present {
				p.ps.add(42, path, "")
			}
			p.t.Entities[id] = p.entity(id, path, props, false)
		}
	}
	if rawRels, present := defs["relationships"]; present && rawRels != nil {
		rl, ok := rawRels.([]any)
		if !ok {
			p.ps.add(4, "definitions.relationships", "relationships must be a list")
			return
		}
		for i, r := range rl {
			path := fmt.Sprintf("definitions.relationships[%d]", i)
			wrap, _ := asMap(r)
			rm, ok := asMap(wrap["relationship"])
			if !ok {
				p.ps.add(101, path, "")
				continue
			}
			p.extraKeys(path, rm, "source", "target", "relationship_type", "template_id")
			var rel Relationship
			var ok1, ok2, ok3 bool
			if rel.Source, ok1 = str(rm["source"], true); !ok1 {
				p.ps.add(102, path, "")
			}
			if rel.Target, ok2 = str(rm["target"], true); !ok2 {
				p.ps.add(103, path, "")
			}
			if rel.Label, ok3 = str(rm["relationship_type"], true); !ok3 {
				p.ps.add(100, path, "")
			}
			idRaw, present := rm["template_id"]
			rel.ID, _ = scalar(idRaw)
			if !present {
				p.ps.add(104, path, "")
				continue
			}
			if !templateIDRe.MatchString(rel.ID) {
				p.ps.add(1, path+".template_id", fmt.Sprintf(" (%q)", rel.ID))
				continue
			}
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			path = fmt.Sprintf("definitions.relationships[%d](%s)", i, rel.ID)
			if _, dup := p.t.Relationships[rel.ID]; dup {
				p.ps.add(2, path, fmt.Sprintf(" (%q)", rel.ID))
				continue
			}
			if _, dup := p.t.Entities[rel.ID]; dup {
				p.ps.add(2, path, fmt.Sprintf(" (%q)", rel.ID))
				continue
			}
			if _, ok := p.t.Entities[rel.Source]; !ok {
				p.ps.add(3, path+".source", fmt.Sprintf(" (%q)", rel.Source))
			}
			if _, ok := p.t.Entities[rel.Target]; !ok {
				p.ps.add(3, path+".target", fmt.Sprintf(" (%q)", rel.Target))
			}
			p.t.Relationships[rel.ID] = rel
		}
	}
}

func (p *parser) equivalences(raw any) {
	l, ok := raw.([]any)
	if !ok || len(l) == 0 {
		p.ps.add(4, "equivalences", "equivalence template must contain a non-empty equivalences list")
		return
	}
	for i, r := range l {
		path := fmt.Sprintf("equivalences[%d]", i)
		wrap, _ := asMap(r)
		el, ok := wrap["equivalence"].([]any)
		if !ok || len(el) < 2 {
			p.ps.add(4, path, "equivalence must list at least two entities")
			continue
		}
		var group []*Entity
		for j, er := range el {
			epath := fmt.Sprintf("%s.equivalence[%d]", path, j)
			w, _ := asMap(er)
			em, ok := asMap(w["entity"])
			if !ok {
				p.ps.add(46, epath, "")
				continue
			}
			if _, present := em["category"]; !present {
				p.ps.add(42, epath, "")
			}
			group = append(group, p.entity("", epath+".entity", em, false))
		}
		p.t.Equivalences = append(p.t.Equivalences, group)
	}
}

func (p *parser) actionV2(path string, raw any) (Action, bool) {
	wrap, _ := asMap(raw)
	am, ok := asMap(wrap["action"])
	if !ok {
		p.ps.add(122, path, "")
		return Action{}, false
	}
	path += ".action"
	p.extraKeys(path, am, "action_type", "action_target", "properties")
	typRaw, present := am["action_type"]
	if !present {
		p.ps.add(123, path, "")
		return Action{}, false
	}
	typ, _ := scalar(typRaw)
	a := Action{Type: typ, Properties: map[string]string{}}
	props := map[string]any{}
	if raw, present := am["properties"]; present {
		m, ok := asMap(raw)
		if !ok {
			p.ps.add(4, path+".properties", "properties must be a mapping")
		}
		props = m
	}
	var tgt map[string]any
	if raw, present := am["action_target"]; present {
		m, ok := asMap(raw)
		if !ok {
			p.ps.add(4, path+".action_target", "action_target must be a mapping")
		}
		tgt = m
	}
	getTarget := func(key string, code int) string {
		v, present := tgt[key]
		if !present {
			p.ps.add(code, path+".action_target", "")
			return ""
		}
		s, _ := scalar(v)
		if _, ok := p.t.Entities[s]; !ok {
			p.ps.add(3, path+".action_target."+key, fmt.Sprintf(" (%q)", s))
		}
		return s
	}
	needTarget := func() bool {
		if tgt == nil {
			p.ps.add(124, path, "")
			return false
		}
		return true
	}
	propStr := func(key string, code int) string {
		s, ok := scalar(props[key])
		if !ok || s == "" {
			p.ps.add(code, path+".properties", "")
		}
		return s
	}
	switch typ {
	case ActionRaiseAlarm:
		if needTarget() {
			a.Target = getTarget("target", 127)
		}
		a.AlarmName = propStr("alarm_name", 125)
		a.Severity = propStr("severity", 126)
		if v, present := props["causing_alarm"]; present {
			s, _ := scalar(v)
			if _, ok := p.t.Entities[s]; !ok {
				p.ps.add(3, path+".properties.causing_alarm", fmt.Sprintf(" (%q)", s))
			}
			a.CausingAlarm = s
		}
	case ActionSetState:
		if needTarget() {
			a.Target = getTarget("target", 129)
		}
		a.State = propStr("state", 128)
	case ActionAddCausal:
		if needTarget() {
			_, hasS := tgt["source"]
			_, hasT := tgt["target"]
			if !hasS || !hasT {
				p.ps.add(130, path+".action_target", "")
			} else {
				a.Source = getTarget("source", 130)
				a.Target = getTarget("target", 130)
				for _, id := range []string{a.Source, a.Target} {
					if e, ok := p.t.Entities[id]; ok && e.Category() != "ALARM" {
						p.ps.add(132, path+".action_target", fmt.Sprintf(" (%q)", id))
					}
				}
			}
		}
	case ActionMarkDown:
		if needTarget() {
			a.Target = getTarget("target", 131)
		}
	case ActionExecuteMistral:
		a.Workflow = propStr("workflow", 133)
		for _, k := range sortedKeys(props) {
			if k != "workflow" && k != "input" {
				p.ps.add(136, path+".properties."+k, "")
			}
		}
		if p.t.Version < 2 {
			if in, ok := asMap(props["input"]); ok {
				for _, k := range sortedKeys(in) {
					if s, _ := scalar(in[k]); isFunction(s) {
						p.ps.add(137, path+".properties.input."+k, "")
					}
				}
			}
		}
		a.Input = p.mistralInput(path+".properties.input", props["input"])
		return a, true
	default:
		p.ps.add(120, path+".action_type", fmt.Sprintf(" (got %q)", typ))
		return Action{}, false
	}
	for _, k := range sortedKeys(props) {
		if s, ok := scalar(props[k]); ok {
			a.Properties[k] = s
		}
	}
	return a, true
}

// ---- shared ----

func (p *parser) entity(id, path string, props map[string]any, strict bool) *Entity {
	e := &Entity{ID: id, Props: map[string]string{}, Regex: map[string]*regexp.Regexp{}}
	for _, k := range sortedKeys(props) {
		v, ok := str(props[k], !strict)
		if !ok {
			p.ps.add(4, join(path, k), "entity property must be a string")
			continue
		}
		if base, isRe := strings.CutSuffix(k, ".regex"); isRe {
			// The pattern must stand alone before it is anchored: wrapped
			// only, "prod)|(.*" closes the group early and matches any
			// value (Python's re, Vitrage's, refuses it).
			_, err := regexp.Compile(v)
			if p.opts.Lenient {
				err = nil
			}
			var re *regexp.Regexp
			if err == nil {
				re, err = regexp.Compile(`^(?:` + v + `)`)
			}
			if err != nil {
				p.ps.add(47, join(path, k), k)
				continue
			}
			e.Regex[base] = re
			continue
		}
		if k == "category" && v != "ALARM" && v != "RESOURCE" {
			p.ps.add(45, join(path, k), "")
		}
		e.Props[k] = v
	}
	e.finish()
	return e
}

// condition parses a condition and checks its references.
func (p *parser) condition(path, cond string) []Clause {
	var unknown []string
	resolve := func(id string) (Term, error) {
		if r, ok := p.t.Relationships[id]; ok {
			return Term{Source: r.Source, Label: r.Label, Target: r.Target}, nil
		}
		if _, ok := p.t.Entities[id]; ok {
			return Term{Source: id}, nil
		}
		unknown = append(unknown, id)
		return Term{Source: id}, nil
	}
	var lim limits
	if !p.opts.Lenient {
		lim = limits{on: true, terms: MaxTerms, dnfTerms: MaxTemplateTerms - p.dnfTerms}
	}
	clauses, size, err := parseCondition(cond, p.v3, resolve, lim)
	if err != nil {
		p.ps.add(85, path, " "+err.Error())
		return nil
	}
	p.dnfTerms += size
	for _, id := range unknown {
		p.ps.add(3, path, fmt.Sprintf(" (%q)", id))
	}
	if p.v3 {
		seen := map[string]bool{}
		for _, c := range clauses {
			for _, t := range c.Terms {
				for _, id := range []string{t.Source, t.Target} {
					if id == "" || seen[id] {
						continue
					}
					seen[id] = true
					if _, ok := p.t.Entities[id]; !ok {
						p.ps.add(10200, path, fmt.Sprintf(" (%q)", id))
					}
				}
			}
		}
	}
	return clauses
}

// checkScenario enforces the content rules on a scenario's DNF.
func (p *parser) checkScenario(path string, sc *Scenario) {
	if len(sc.Clauses) == 0 {
		return
	}
	cpath := path + ".condition"
	reported := map[int]bool{}
	for _, c := range sc.Clauses {
		pos := map[string]bool{}
		for _, e := range c.Positive {
			pos[e] = true
		}
		if len(c.Positive) == 0 && !reported[134] {
			reported[134] = true
			p.ps.add(134, cpath, "")
		}
		for _, t := range c.Terms {
			if !t.Negated {
				continue
			}
			if t.IsEntity() {
				if !reported[86] {
					reported[86] = true
					p.ps.add(86, cpath, " template id: "+t.Source)
				}
				continue
			}
			if len(c.Positive) > 0 && !pos[t.Source] && !pos[t.Target] && !reported[10202] {
				reported[10202] = true
				p.ps.add(10202, cpath, t.String())
			}
		}
	}
	if reported[134] {
		return
	}
	if !p.opts.Lenient {
		for _, c := range sc.Clauses {
			if parts := components(c); len(parts) > 1 {
				p.ps.add(10203, cpath, strings.Join(parts, " | "))
				break
			}
		}
	}
	if len(sc.Clauses) > 1 {
		common := map[string]bool{}
		for _, e := range sc.Clauses[0].Positive {
			common[e] = true
		}
		for _, c := range sc.Clauses[1:] {
			in := map[string]bool{}
			for _, e := range c.Positive {
				in[e] = true
			}
			for e := range common {
				if !in[e] {
					delete(common, e)
				}
			}
		}
		if len(common) == 0 {
			p.ps.add(135, cpath, "")
			return
		}
	}
	for i, a := range sc.Actions {
		for _, id := range []string{a.Target, a.Source, a.CausingAlarm} {
			if id == "" {
				continue
			}
			if _, known := p.t.Entities[id]; !known {
				continue // already reported
			}
			for _, c := range sc.Clauses {
				found := false
				for _, e := range c.Positive {
					if e == id {
						found = true
						break
					}
				}
				if !found {
					code := 10201
					if len(sc.Clauses) > 1 {
						code = 135
					}
					detail := ""
					if code == 10201 {
						detail = fmt.Sprintf("%q", id)
					} else {
						detail = fmt.Sprintf(" (%q)", id)
					}
					p.ps.add(code, fmt.Sprintf("%s.actions[%d]", path, i), detail)
					break
				}
			}
		}
	}
}

// components returns the entities of a clause's positive terms grouped by
// the positive relationships that connect them, each group's entities
// sorted and joined by commas, the groups in the order of their first
// entity.
func components(c Clause) []string {
	parent := map[string]string{}
	var find func(string) string
	find = func(e string) string {
		if parent[e] == e {
			return e
		}
		r := find(parent[e])
		parent[e] = r
		return r
	}
	for _, e := range c.Positive {
		parent[e] = e
	}
	for _, t := range c.Terms {
		if t.Negated || t.IsEntity() {
			continue
		}
		if a, b := find(t.Source), find(t.Target); a != b {
			parent[max(a, b)] = min(a, b)
		}
	}
	groups := map[string][]string{}
	var roots []string
	for _, e := range c.Positive { // sorted
		r := find(e)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], e)
	}
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		out = append(out, strings.Join(groups[r], ", "))
	}
	return out
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, x := range m {
			ks, ok := scalar(k)
			if !ok {
				return nil, false
			}
			out[ks] = x
		}
		return out, true
	}
	return nil, false
}

// scalar renders a YAML scalar as a string.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(x), true
	}
	return "", false
}

// str returns a string value; loose also accepts other scalars.
func str(v any, loose bool) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	if loose {
		return scalar(v)
	}
	return "", false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
