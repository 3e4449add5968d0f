package template

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeText decodes the first YAML document of body as Vitrage reads a
// template (PyYAML's BaseLoader): a scalar is the text written, so `1.10`
// stays "1.10", `0123` keeps its zero and `2024-01-01` is a string, where
// typed YAML reads 1.1, 83 and a time. Only a null (`~`, `null`, nothing)
// is nil, so that an empty value still reads as missing, and a boolean is
// "true" or "false" whichever way it is spelt, as typed decoding rendered
// it (a filter on is_marked_down matches either way). Mappings become
// map[string]any, with merge keys (`<<`) applied and a key written twice
// refused, as yaml.v3 does; sequences become []any.
func decodeText(body []byte) (any, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(body, &root); err != nil {
		return nil, err
	}
	// Aliases are expanded as they are met: the budget bounds the values
	// made, so that a few aliases of aliases cannot make an exponential
	// document out of a small body.
	d := textDecoder{budget: 4*len(body) + 1024}
	return d.value(&root)
}

type textDecoder struct{ budget int }

var errAliasExpansion = errors.New("yaml: aliases expand the document too far")

func (d *textDecoder) value(n *yaml.Node) (any, error) {
	if d.budget--; d.budget < 0 {
		return nil, errAliasExpansion
	}
	switch n.Kind {
	case 0:
		return nil, nil // an empty body
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return d.value(n.Content[0])
	case yaml.AliasNode:
		return d.value(n.Alias)
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return strings.ToLower(n.Value), nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := d.value(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return d.mapping(n)
	}
	return nil, fmt.Errorf("yaml: line %d: unexpected node", n.Line)
}

func (d *textDecoder) mapping(n *yaml.Node) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	lines := make(map[string]int, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		kn := k
		if kn.Kind == yaml.AliasNode {
			kn = kn.Alias
		}
		if kn.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("yaml: line %d: a mapping key must be a scalar", k.Line)
		}
		key := kn.Value
		if line, dup := lines[key]; dup {
			return nil, fmt.Errorf("yaml: line %d: mapping key %q already defined at line %d", k.Line, key, line)
		}
		lines[key] = k.Line
		val, err := d.value(v)
		if err != nil {
			return nil, err
		}
		out[key] = val
	}
	// The keys written in the mapping win over merged ones, and an
	// earlier merged mapping over a later one.
	for _, m := range merges {
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			if s.Kind == yaml.AliasNode {
				s = s.Alias
			}
			if s.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("yaml: line %d: a merge key must name a mapping or a list of mappings", m.Line)
			}
			mv, err := d.mapping(s)
			if err != nil {
				return nil, err
			}
			for k, v := range mv {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
	}
	return out, nil
}
