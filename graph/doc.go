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
// Storage is Causeway's own and compact: a table of vertices by id (in
// pages that hold only the ids not purged; see graph/internal/paged), each
// with its outgoing edges sorted by (target, relationship) and the sorted
// ids of the vertices with an edge to it. View implements gonum's
// graph.Directed over it, so gonum's traversals (BreadthFirst for topology
// and RCA, Dijkstra for causal paths) run on it without a copy; see
// BenchmarkMemory for the cost per entity against gonum's simple graph.
//
// Every edge remembers which (entity, source) pairs assert it: an upsert
// from a source replaces the relations that source gave for the entity and
// leaves other sources' alone; an edge nobody asserts any more is deleted.
// The evaluator's edges are owned by EvaluatorSource.
//
// Deleted vertices and edges stay, marked deleted, for RCA of what was
// cleared, until DeletedRetention of log time has passed since their
// deletion; then Apply removes them (see Purged), and the placeholders
// that nothing names any more with them, leaving holes in the ids.
//
// The package does no I/O and is not safe for concurrent use: the owner
// serialises every call.
package graph
