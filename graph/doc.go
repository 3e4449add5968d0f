// Package graph is Causeway's entity graph: resources and alarms as vertices,
// labelled directed edges between them, the rules that apply the log's events
// to them (Vitrage semantics), the normalisation of states, the queries the
// API answers (topology, alarms, RCA) and a canonical dump.
//
// The graph is a pure function of the log prefix (invariant 3 of DESIGN.md):
// vertex ids come from a counter in creation order, every list it returns is
// sorted, every timestamp it writes comes from the record being applied, and
// nothing reads the wall clock, a random source or the order of a map.
//
// It implements gonum's graph.Directed over its own compact storage (see
// Directed), so gonum's traversals run on it.
//
// The package does no I/O and is not safe for concurrent use: the owner
// serialises every call.
package graph
