// Package snapshot writes and reads snapshots of the processor's state and
// reconstructs that state at any past point of the log.
//
// A snapshot is the whole state machine at one seq: a versioned header
// (magic, format version, seq, recorded_at, payload encoding, sizes and the
// SHA-256 of the compressed body, itself covered by a CRC) followed by the
// zstd-compressed payload. The blob is split into chunks below MariaDB's
// packet limit and written, with the raft-term fence check, in one
// transaction (invariant 4 of DESIGN.md: a deposed leader's late write fails).
//
// Reconstruct loads the newest readable snapshot at or before a target and
// replays the log after it into a fresh machine, never the live one. Because
// the state is a pure function of the log prefix (invariant 3), the result
// equals a from-scratch replay of events[1..target], byte for byte in the
// canonical dump. A corrupt snapshot or one of an unknown version or encoding
// is skipped with a warning; an older one, and finally a full replay from
// seq 0, is used instead.
//
// A state also records the semantics it was computed under
// (evaluator.Semantics, raised when a fix makes the same log apply to a
// different state), and keeps it through the snapshots taken from it. A
// snapshot of another build's semantics is still used, like any other:
// preferring a full replay while retention has dropped none of the log
// would make a node's state depend on when it started. It is reported
// instead (Reconstruction.StaleSemantics, the processor's status,
// causeway_snapshot_stale_semantics_used_total). Each snapshot row also
// records the semantics (Meta.Semantics; rows older than that column are
// inspected instead). To bring a cluster to this build's semantics, stop
// the processors, delete those snapshots while the log is still whole from
// seq 1 (Reconstructor.PruneStale, under retention's lock; `causeway
// snapshots prune-stale`, which also refuses while a processor's presence
// row is current), and start them again: each replays the log.
//
// The processor's state machine is a Node: the evaluator engine and the
// webhook subscription registry (with the open alarms each subscription was
// told of), both functions of the log prefix. Its
// snapshots use the node encodings (NodeBin, NodeGob, NodeJSON), versioned
// apart from the engine-only ones (EngineBin, EngineGob, EngineJSON): a
// NodeFactory skips an engine-only snapshot (it lacks the subscriptions)
// and falls back to an older one or a full replay, while an EngineFactory
// reads both (historical RCA needs the engine alone).
//
// Snapshots are written in the bin encodings (statebin.go), a versioned
// layout made for a fast restore (one string table, varints, exact-size
// arrays): it decodes a state several times faster than gob, with a tiny
// fraction of its allocations. Earlier builds wrote gob, which is still
// read, bounded (gobcheck.go): gob trusts its input's counts, so a payload
// is walked first and refused as corrupt (the snapshot skipped) when a
// count claims more than its bytes hold, and a panic in gob is an error. A build that does not know an encoding skips the snapshot
// (ErrUnknownEncoding): a processor rolled back to such a build starts
// from an older gob snapshot or a full replay, and has neither once
// retention dropped the events before the oldest gob snapshot.
// Config.Encoding "gob" makes the leader write gob again, so that a
// cluster can be rolled back at any time.
//
// The leader writes snapshots in one of two ways. Writer.Take runs a
// capture function under the processor's lock (the pause, measured in
// causeway_snapshot_pause_seconds) and encodes outside it; with the
// evaluator's State (a deep copy) that pause grows with the graph (hundreds
// of milliseconds at 100k entities on these machines). Writer.TakeFromLog
// instead snapshots a Shadow: a second machine, private to the writer, that
// follows the log from the database. Event processing is then not held at
// all; the cost is the shadow's memory and the CPU of replaying each event
// a second time, in bursts at snapshot time.
//
// Retention (Store.Prune) always keeps the newest verified snapshot (its
// payload inflated whole, as Reconstruct reads it) at or
// before the retention boundary, so every moment inside the window can still
// be reconstructed. Event retention must then drop only events recorded
// before that anchor (store.Log.Retain, bounded by the oldest stored
// snapshot), or replay from the anchor would meet a gap (ErrGap); and it
// deletes the events up to the anchor's seq that the anchor's day
// partition still holds (store.Log.TrimThrough), since no snapshot is left
// before them to replay them from: the oldest stored event then comes
// right after the anchor, which ReconstructEarliest starts from.
package snapshot
