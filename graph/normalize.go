package graph

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The operational values a state or severity normalises to (Vitrage's
// OperationalResourceState and OperationalAlarmSeverity).
const (
	OpOK         = "OK"
	OpTransient  = "TRANSIENT"
	OpSuboptimal = "SUBOPTIMAL"
	OpError      = "ERROR"
	OpDeleted    = "DELETED"
	OpNA         = "N/A"
	OpCritical   = "CRITICAL"
	OpSevere     = "SEVERE"
	OpWarning    = "WARNING"
)

var operationalValues = map[string][]string{
	CategoryResource: {OpOK, OpTransient, OpSuboptimal, OpError, OpDeleted, OpNA},
	CategoryAlarm:    {OpCritical, OpSevere, OpWarning, OpOK, OpNA},
}

// Files of defaults for types that have no file of their own.
const (
	defaultResourceFile = "default"
	defaultAlarmFile    = "default_alarm"
)

// MaxValuesFileBytes bounds one values file.
const MaxValuesFileBytes = 1 << 20

//go:embed states/*.yaml
var defaultStates embed.FS

// Normalizer maps the raw states (resources) and severities (alarms) that
// datasources report to Vitrage's aggregated and operational values, per
// entity type, with Vitrage's datasources_values file format: one YAML file
// a type, named <type>.yaml.
//
// The aggregated value is the upper-cased raw value with the highest
// priority among the reported and the deduced one; the operational value is
// what that raw value maps to. A raw value the type does not list, or an
// empty one, maps to N/A with priority 0.
//
// A Normalizer is immutable once built and safe for concurrent use.
type Normalizer struct {
	types map[string]*TypeValues
}

// TypeValues is the normalisation of one type.
type TypeValues struct {
	Category string
	// Values maps an upper-cased raw value to its normalisation.
	Values map[string]Value
}

// Value is what one raw value normalises to.
type Value struct {
	Operational string
	Priority    int
}

// valuesFile is the YAML form (Vitrage's datasources_values).
type valuesFile struct {
	Category string `yaml:"category"`
	Values   []struct {
		Aggregated struct {
			Priority *int `yaml:"priority"`
			Original []struct {
				Name        string `yaml:"name"`
				Operational string `yaml:"operational_value"`
			} `yaml:"original values"`
		} `yaml:"aggregated values"`
	} `yaml:"values"`
}

// ParseValues decodes and validates one values file strictly: unknown keys,
// unknown categories or operational values, missing priorities and raw
// values listed twice are errors, all of them reported.
func ParseValues(data []byte) (*TypeValues, error) {
	if len(data) > MaxValuesFileBytes {
		return nil, fmt.Errorf("values file of %d bytes exceeds the limit of %d", len(data), MaxValuesFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f valuesFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("values file is empty")
		}
		return nil, fmt.Errorf("decode values file: %w", err)
	}
	var extra valuesFile
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("values file holds more than one YAML document")
	}
	var errs []error
	allowed, ok := operationalValues[f.Category]
	if !ok {
		errs = append(errs, fmt.Errorf("category: must be %s or %s, not %q", CategoryResource, CategoryAlarm, f.Category))
	}
	tv := &TypeValues{Category: f.Category, Values: make(map[string]Value)}
	if len(f.Values) == 0 {
		errs = append(errs, errors.New("values: at least one aggregated value is required"))
	}
	for i, v := range f.Values {
		at := fmt.Sprintf("values[%d].aggregated values", i)
		if v.Aggregated.Priority == nil {
			errs = append(errs, fmt.Errorf("%s.priority: is required", at))
		} else if *v.Aggregated.Priority < 1 {
			errs = append(errs, fmt.Errorf("%s.priority: must be at least 1 (0 is N/A's), not %d", at, *v.Aggregated.Priority))
		}
		if len(v.Aggregated.Original) == 0 {
			errs = append(errs, fmt.Errorf("%s.original values: at least one is required", at))
		}
		for j, o := range v.Aggregated.Original {
			oat := fmt.Sprintf("%s.original values[%d]", at, j)
			name := strings.ToUpper(strings.TrimSpace(o.Name))
			if name == "" {
				errs = append(errs, fmt.Errorf("%s.name: is required", oat))
				continue
			}
			if ok && !slices.Contains(allowed, o.Operational) {
				errs = append(errs, fmt.Errorf("%s.operational_value: %q is not one of %s", oat, o.Operational, strings.Join(allowed, ", ")))
			}
			if _, dup := tv.Values[name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is listed twice", oat, name))
			}
			p := 0
			if v.Aggregated.Priority != nil {
				p = *v.Aggregated.Priority
			}
			tv.Values[name] = Value{Operational: o.Operational, Priority: p}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tv, nil
}

// DefaultNormalizer returns the normaliser of the built-in types (the files
// in graph/states).
func DefaultNormalizer() *Normalizer {
	n, err := loadValues(defaultStates, "states", nil)
	if err != nil {
		// The embedded files are tested; an error here is a build defect,
		// surfaced as an empty normaliser (every value N/A) rather than a panic.
		return &Normalizer{types: map[string]*TypeValues{}}
	}
	return n
}

// NewNormalizer returns the built-in defaults, with the operator's files in
// dir (a directory of <type>.yaml files; nil: none) replacing the default
// file of the same type or adding types. Every bad file is reported.
func NewNormalizer(dir fs.FS) (*Normalizer, error) {
	n, err := loadValues(defaultStates, "states", nil)
	if err != nil {
		return nil, fmt.Errorf("built-in values: %w", err)
	}
	if dir == nil {
		return n, nil
	}
	return loadValues(dir, ".", n.types)
}

func loadValues(fsys fs.FS, dir string, base map[string]*TypeValues) (*Normalizer, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read values directory: %w", err)
	}
	types := make(map[string]*TypeValues, len(base)+len(entries))
	for k, v := range base {
		types[k] = v
	}
	var errs []error
	for _, e := range entries { // ReadDir sorts by name
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", e.Name(), err))
			continue
		}
		tv, err := ParseValues(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
			continue
		}
		types[strings.TrimSuffix(e.Name(), ".yaml")] = tv
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Normalizer{types: types}, nil
}

// Types lists the types with a values file, sorted.
func (n *Normalizer) Types() []string {
	out := make([]string, 0, len(n.types))
	for k := range n.types {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Lookup returns how raw value normalises for a vertex of this category and
// type: the type's own file when its category matches, else the category's
// default file.
func (n *Normalizer) Lookup(category, typ, raw string) Value {
	up := strings.ToUpper(raw)
	if up == "" {
		return Value{Operational: OpNA}
	}
	tv := n.types[typ]
	if tv == nil || tv.Category != category {
		if category == CategoryAlarm {
			tv = n.types[defaultAlarmFile]
		} else {
			tv = n.types[defaultResourceFile]
		}
	}
	if tv != nil {
		if v, ok := tv.Values[up]; ok {
			return v
		}
	}
	return Value{Operational: OpNA}
}

// Resolve normalises a vertex: the reported and the deduced raw values are
// looked up and the one of higher priority wins (the reported one on a tie).
// It returns the aggregated value (the winner, upper-cased) and its
// operational value.
func (n *Normalizer) Resolve(category, typ, reported, deduced string) (aggregated, operational string) {
	r := n.Lookup(category, typ, reported)
	agg, op, prio := strings.ToUpper(reported), r.Operational, r.Priority
	if deduced != "" {
		d := n.Lookup(category, typ, deduced)
		if d.Priority > prio {
			agg, op = strings.ToUpper(deduced), d.Operational
		}
	}
	return agg, op
}
