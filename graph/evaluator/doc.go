// Package evaluator runs scenario templates over the entity graph: it turns
// graph changes into deduced alarms, deduced states, marked-down flags and
// `causes` edges, the way Vitrage's scenario evaluator does.
//
// Engine is the deterministic state machine of invariant 3: it owns the
// graph and the loaded templates, and Apply(record) routes template events
// to itself and every other kind to the graph, then evaluates the resulting
// changes — and the changes its own actions cause — until nothing more
// changes (bounded: ErrNoFixpoint, never an endless loop).
//
// Evaluation is incremental. Each change anchors the clauses it can affect at
// the changed vertex (or at the endpoints of the changed edge); the matches of
// a clause through that anchor are enumerated on the current graph and
// compared with the matches that held before: a new match runs its actions
// (DO), a match that stopped holding reverts them (UNDO). Changes are taken
// in waves (the record's changes, then the changes the actions made, ...),
// each anchor reconciled once per wave. Matching ignores deleted and
// placeholder vertices and deleted edges; distinct template entities bind
// distinct vertices; a NOT term holds when no live edge of its label links
// the bound vertex to a vertex fitting the other entity.
//
// Equivalence templates (Vitrage v2) make an entity filter equal to another
// member's of its group match what any member matches; adding or deleting
// one re-runs every scenario. Definition templates only serve `includes`;
// a template keeps the definitions it was compiled with. Effects are
// reference-counted: several matches may support the same deduced alarm,
// state or edge, the dominant value (highest severity, worst state) among the
// supporting matches is the one shown, and the effect goes away only when its
// last support does.
//
// No wall clock, no goroutines, no map-order dependence: every iteration
// over a map goes through sorted keys.
package evaluator
