package event

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeFast parses the common shape of an envelope without reflection:
// exact-case known keys, each at most once, string and integer values, no
// nulls, no subscription. It returns ok false for anything else, and
// Decode then takes encoding/json's path, which reports errors; so every
// input decodeFast accepts gives the wire value encoding/json would.
func decodeFast(b []byte) (w wire, ok bool) {
	p := fastParser{b: b}
	if !p.object(func(key []byte) bool { return p.envelopeField(&w, key) }) {
		return wire{}, false
	}
	p.space()
	if p.i != len(p.b) {
		return wire{}, false
	}
	return w, true
}

type fastParser struct {
	b    []byte
	i    int
	seen uint32 // envelope keys seen (bit per key)
	buf  []byte // scratch for unescaping
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) peek(c byte) bool {
	p.space()
	return p.i < len(p.b) && p.b[p.i] == c
}

// object parses {"key": value, ...}, calling field with the parser at the
// value; field must consume it. Keys are raw (no escapes accepted).
func (p *fastParser) object(field func(key []byte) bool) bool {
	if !p.peek('{') {
		return false
	}
	p.i++
	if p.peek('}') {
		p.i++
		return true
	}
	for {
		key, ok := p.rawKey()
		if !ok || !p.peek(':') {
			return false
		}
		p.i++
		p.space()
		if !field(key) {
			return false
		}
		p.space()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// rawKey parses a key made of plain ASCII without escapes.
func (p *fastParser) rawKey() ([]byte, bool) {
	if !p.peek('"') {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		c := p.b[j]
		if c == '"' {
			p.i = j + 1
			return p.b[start:j], true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return nil, false
		}
	}
	return nil, false
}

// str parses a string value as encoding/json would decode it; invalid
// UTF-8, surrogate escapes and control characters are left to the slow path.
func (p *fastParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	j := start
	ascii := true
	for ; j < len(p.b); j++ {
		c := p.b[j]
		if c == '"' || c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if j >= len(p.b) {
		return "", false
	}
	if p.b[j] == '"' {
		seg := p.b[start:j]
		if !ascii && !utf8.Valid(seg) {
			return "", false
		}
		p.i = j + 1
		return string(seg), true
	}
	// Escapes: unescape into the scratch buffer.
	out := append(p.buf[:0], p.b[start:j]...)
	for j < len(p.b) {
		c := p.b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(out) {
				return "", false
			}
			p.i = j + 1
			p.buf = out
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if j+1 >= len(p.b) {
				return "", false
			}
			j++
			switch p.b[j] {
			case '"', '\\', '/':
				out = append(out, p.b[j])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if j+4 >= len(p.b) {
					return "", false
				}
				r, err := strconv.ParseUint(string(p.b[j+1:j+5]), 16, 32)
				if err != nil || utf16.IsSurrogate(rune(r)) {
					return "", false
				}
				out = utf8.AppendRune(out, rune(r))
				j += 4
			default:
				return "", false
			}
			j++
		default:
			if c >= 0x80 {
				ascii = false
			}
			out = append(out, c)
			j++
		}
	}
	return "", false
}

// known parses a string value as str does, returning the constant of
// consts it equals without allocating a copy: the values most events
// repeat (their kind, an entity's category, a relation's direction) share
// the constant. None of consts holds a byte str would read otherwise (a
// quote, a backslash, a control or non-ASCII byte).
func (p *fastParser) known(consts []string) (string, bool) {
	if p.i < len(p.b) && p.b[p.i] == '"' {
		rest := p.b[p.i+1:]
		for _, c := range consts {
			if len(rest) > len(c) && rest[len(c)] == '"' && string(rest[:len(c)]) == c {
				p.i += len(c) + 2
				return c, true
			}
		}
	}
	return p.str()
}

// The constants known reads without a copy.
var (
	knownKinds = []string{string(KindEntityUpsert), string(KindEntityDelete), string(KindSyncBegin), string(KindSyncEnd),
		string(KindTemplatePut), string(KindTemplateDelete), string(KindSubscriptionPut), string(KindSubscriptionDelete), string(KindTick)}
	knownCategories = []string{CategoryResource, CategoryAlarm}
	knownDirections = []string{string(In), string(Out)}
)

// setStr parses a string value into dst.
func (p *fastParser) setStr(dst *string) bool {
	s, ok := p.str()
	*dst = s
	return ok
}

// once records key bit k as seen, refusing a repeated key.
func once(seen *uint32, k uint) bool {
	if *seen&(1<<k) != 0 {
		return false
	}
	*seen |= 1 << k
	return true
}

func (p *fastParser) envelopeField(w *wire, key []byte) bool {
	switch string(key) {
	case "v":
		if !once(&p.seen, 0) {
			return false
		}
		// A non-negative integer without exponent or fraction.
		start := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		n := p.i - start
		if n == 0 || n > 9 || (n > 1 && p.b[start] == '0') {
			return false
		}
		v, err := strconv.Atoi(string(p.b[start:p.i]))
		w.V = v
		return err == nil
	case "event_id":
		return once(&p.seen, 1) && p.setStr(&w.EventID)
	case "source":
		return once(&p.seen, 2) && p.setStr(&w.Source)
	case "kind":
		s, ok := p.known(knownKinds)
		w.Kind = Kind(s)
		return once(&p.seen, 3) && ok
	case "observed_at":
		s, ok := p.str()
		w.observedAt, w.hasObservedAt = s, true
		return once(&p.seen, 4) && ok
	case "entity":
		if !once(&p.seen, 5) {
			return false
		}
		// The entity and room for one relation (most have one or none)
		// are allocated together.
		x := &struct {
			e Entity
			r [1]Relation
		}{}
		w.Entity = &x.e
		return p.entity(w.Entity, x.r[:0:1])
	case "sync":
		if !once(&p.seen, 6) {
			return false
		}
		w.Sync = &Sync{}
		var seen uint32
		return p.object(func(k []byte) bool {
			return string(k) == "id" && once(&seen, 0) && p.setStr(&w.Sync.ID)
		})
	case "template":
		if !once(&p.seen, 7) {
			return false
		}
		w.Template = &Template{}
		var seen uint32
		return p.object(func(k []byte) bool {
			switch string(k) {
			case "name":
				return once(&seen, 0) && p.setStr(&w.Template.Name)
			case "body":
				return once(&seen, 1) && p.setStr(&w.Template.Body)
			case "params":
				if !once(&seen, 2) {
					return false
				}
				w.Template.Params = map[string]string{}
				return p.stringMap(w.Template.Params)
			}
			return false
		})
	}
	return false
}

// entity parses an entity into e; its relations, if any, are appended to
// rels (empty).
func (p *fastParser) entity(e *Entity, rels []Relation) bool {
	var seen uint32
	return p.object(func(k []byte) bool {
		switch string(k) {
		case "category":
			if !once(&seen, 0) {
				return false
			}
			s, ok := p.known(knownCategories)
			e.Category = s
			return ok
		case "type":
			return once(&seen, 1) && p.setStr(&e.Type)
		case "id":
			return once(&seen, 2) && p.setStr(&e.ID)
		case "name":
			return once(&seen, 3) && p.setStr(&e.Name)
		case "state":
			return once(&seen, 4) && p.setStr(&e.State)
		case "severity":
			return once(&seen, 5) && p.setStr(&e.Severity)
		case "project_id":
			return once(&seen, 6) && p.setStr(&e.ProjectID)
		case "properties":
			if !once(&seen, 7) {
				return false
			}
			e.Properties = map[string]string{}
			return p.stringMap(e.Properties)
		case "relations":
			if !once(&seen, 8) {
				return false
			}
			return p.relations(e, rels)
		}
		return false
	})
}

// stringMap parses an object of string values into m (empty). A repeated
// key is left to encoding/json, which keeps its last value.
func (p *fastParser) stringMap(m map[string]string) bool {
	return p.object(func(k []byte) bool {
		if _, dup := m[string(k)]; dup {
			return false
		}
		v, ok := p.str()
		m[string(k)] = v
		return ok
	})
}

func (p *fastParser) relations(e *Entity, rels []Relation) bool {
	if !p.peek('[') {
		return false
	}
	p.i++
	e.Relations = rels
	if p.peek(']') {
		p.i++
		return true
	}
	for {
		var r Relation
		var seen uint32
		if !p.object(func(k []byte) bool {
			switch string(k) {
			case "relationship":
				return once(&seen, 0) && p.setStr(&r.Relationship)
			case "category":
				if !once(&seen, 1) {
					return false
				}
				s, ok := p.known(knownCategories)
				r.Category = s
				return ok
			case "type":
				return once(&seen, 2) && p.setStr(&r.Type)
			case "id":
				return once(&seen, 3) && p.setStr(&r.ID)
			case "direction":
				s, ok := p.known(knownDirections)
				r.Direction = Direction(s)
				return once(&seen, 4) && ok
			}
			return false
		}) {
			return false
		}
		e.Relations = append(e.Relations, r)
		p.space()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}
