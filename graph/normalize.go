package graph

import "io/fs"

// Normalizer maps the raw states and severities that datasources report to
// Vitrage's aggregated and operational values, per entity type.
type Normalizer struct{}

// DefaultNormalizer returns the normaliser of the built-in types.
func DefaultNormalizer() *Normalizer { return &Normalizer{} }

// NewNormalizer returns the built-in defaults overridden by the operator's
// YAML files in dir (nil: defaults only).
func NewNormalizer(dir fs.FS) (*Normalizer, error) { return &Normalizer{}, nil }

func (n *Normalizer) resolve(category, typ, reported, deduced string) (agg, op string) {
	return reported, reported
}
