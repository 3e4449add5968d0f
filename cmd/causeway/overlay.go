package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// baseKey is the top-level key of an overlay: a configuration file that
// holds only what differs from the file it names (a processor node's id,
// data directory and ports over the shared causeway.yaml), so that an edit
// of the shared file reaches every node.
const baseKey = "base"

// readConfig reads the configuration file at path. An overlay (a file with
// a top-level `base`) is laid over the file it names, resolved against the
// overlay's directory; the result is one document. A base may not be an
// overlay itself.
func readConfig(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	base, err := overlayBase(raw)
	if err != nil || base == "" {
		return raw, invalidConfig(err)
	}
	if !filepath.IsAbs(base) {
		base = filepath.Join(filepath.Dir(path), base)
	}
	under, err := os.ReadFile(base)
	if err != nil {
		return nil, fmt.Errorf("read the base of %s: %w", path, err)
	}
	merged, err := overlayConfig(under, raw)
	if err != nil {
		return nil, fmt.Errorf("config %s over %s: %w", path, base, invalidConfig(err))
	}
	if err := strictDecode(merged, &fileConfig{}); err != nil {
		return nil, locate(path, raw, base, under, err)
	}
	return merged, nil
}

// overlayDoc is what an overlay holds: any part of the configuration, and
// the base it is laid over.
type overlayDoc struct {
	fileConfig `yaml:",inline"`
	Base       string `yaml:"base"`
}

// locate says which of the overlay at path (raw) and its base (under)
// holds what made their merged document fail to decode (merr): the lines
// of that document, re-encoded, are in neither file. Each file is decoded
// alone, so that its errors give its own lines; merr is the answer only
// when neither fails alone.
func locate(path string, raw []byte, base string, under []byte, merr error) error {
	var errs []error
	if err := strictDecode(raw, &overlayDoc{}); err != nil {
		errs = append(errs, fmt.Errorf("config %s: %w", path, err))
	}
	if err := strictDecode(under, &fileConfig{}); err != nil {
		errs = append(errs, fmt.Errorf("config %s: base %s: %w", path, base, err))
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("config %s over %s: %w", path, base, merr))
	}
	return invalidConfig(errors.Join(errs...))
}

// strictDecode decodes raw into v, refusing unknown keys; an empty
// document is no error here.
func strictDecode(raw []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	return noMoreDocuments(dec)
}

// overlayBase is the `base` of raw ("" when raw is no overlay). A raw that
// does not decode is left to the strict decoder, which says why.
func overlayBase(raw []byte) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return "", nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != baseKey {
			continue
		}
		if v := m.Content[i+1]; v.Kind != yaml.ScalarNode || v.Value == "" {
			return "", fmt.Errorf("%s: line %d: must name the file this one is laid over", baseKey, v.Line)
		}
		return m.Content[i+1].Value, nil
	}
	return "", nil
}

// overlayConfig lays over on base: a mapping of over merges into base's,
// key by key and recursively; anything else (a value, a list) replaces
// base's. over's `base` key is dropped; base may not have one.
func overlayConfig(base, over []byte) ([]byte, error) {
	b, err := mappingDoc(base, "base")
	if err != nil {
		return nil, err
	}
	o, err := mappingDoc(over, "overlay")
	if err != nil {
		return nil, err
	}
	if _, ok := lookup(b, baseKey); ok {
		return nil, errors.New("the base is an overlay itself (it has a base key); only one level is allowed")
	}
	for i := 0; i+1 < len(o.Content); i += 2 {
		if o.Content[i].Value == baseKey {
			o.Content = append(o.Content[:i:i], o.Content[i+2:]...)
			break
		}
	}
	lay(b, o)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("encode the merged configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode the merged configuration: %w", err)
	}
	return out.Bytes(), nil
}

// mappingDoc decodes raw, one document whose top level is a mapping (an
// empty document is an empty mapping).
func mappingDoc(raw []byte, what string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: the top level must be a mapping", what)
	}
	if err := noMoreDocuments(dec); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return doc.Content[0], nil
}

// noMoreDocuments refuses a document after the one dec decoded: the
// configuration is one document, and what follows a "---" would be
// silently left unread (its settings, and its typos). An empty one (a
// trailing "---") is no harm.
func noMoreDocuments(dec *yaml.Decoder) error {
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(doc.Content) > 0 && doc.Content[0].Tag != "!!null" {
			return fmt.Errorf("line %d: a second YAML document: the configuration is one document, and this one would be ignored", doc.Line)
		}
	}
}

// lookup is the value of key in mapping m.
func lookup(m *yaml.Node, key string) (*yaml.Node, bool) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1], true
		}
	}
	return nil, false
}

// lay merges mapping o into mapping b.
func lay(b, o *yaml.Node) {
	for i := 0; i+1 < len(o.Content); i += 2 {
		k, v := o.Content[i], o.Content[i+1]
		if cur, ok := lookup(b, k.Value); ok {
			if cur.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode {
				lay(cur, v)
			} else {
				*cur = *v
			}
			continue
		}
		b.Content = append(b.Content, k, v)
	}
}
