// Package template parses and validates Vitrage scenario templates, format
// versions 1, 2 and 3, into one version-independent model that the evaluator
// runs.
//
// Conditions are compiled to disjunctive normal form: a scenario holds when
// any of its clauses holds, and a clause is a conjunction of entity and
// relationship terms, some negated. Validation follows the rules Vitrage
// enforces (every clause has a positive term, NOT applies only to
// relationships, every OR clause shares the entities the actions name) and
// reports every problem it finds, each with its location in the template and
// the Vitrage status code, instead of stopping at the first.
//
// The package is pure: no I/O, no clock, no globals; parsing the same bytes
// always yields the same Template.
package template
