package snapshot

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/emit"
	"github.com/causeway/causeway/notifier/subscription"
)

// Payload encodings of a NodeState: the processor's whole deterministic
// state (engine and subscription registry). They replace the engine-only
// encodings for the processor's snapshots; a NodeFactory skips an
// engine-only snapshot (ErrUnknownEncoding) because it lacks the
// subscriptions, while an EngineFactory reads both kinds (the engine of a
// node snapshot is all historical RCA needs). NodeBin (statebin.go) is
// written by default: it decodes several times faster than NodeGob. Gob
// and JSON payloads are still read.
const (
	NodeBin  = "node-state-bin"
	NodeGob  = "node-state-gob"
	NodeJSON = "node-state-json"
)

// NodeEncodings are the payload encodings a NodeFactory restores: those
// of the processors' snapshots.
func NodeEncodings() []string { return []string{NodeBin, NodeGob, NodeJSON} }

// NodeStateVersion is the version of NodeState's layout:
//
//	1: the engine and the subscriptions.
//	2: each subscription also holds the open alarms it was told of
//	   (subscription.Entry.Told; from evaluator.Semantics 8, those it
//	   follows, told or not: the layout is the same).
//
// State writes the oldest version that holds the state: 1 while no
// subscription was told of an open alarm, so that a release before 2
// reads it, and refuses a state that holds told alarms rather than lose
// them. A version 1 state restores with nothing told: exactly what it
// holds, but not what a replay of the log by this build holds when a
// subscription was sent an alarm that is still open. Such a state was
// computed by a build of an older evaluator.Semantics, so its use is
// reported as stale (Node.StaleSemantics) and `causeway snapshots
// prune-stale` rebuilds it from the log.
const NodeStateVersion = 2

// nodeStateNoTold is the NodeState version without told alarms,
// nodeStateTold the first with them.
const (
	nodeStateNoTold = 1
	nodeStateTold   = 2
)

// NodeState is a Node as plain data, for snapshots.
type NodeState struct {
	Version       int                  `json:"version"`
	Engine        evaluator.State      `json:"engine"`
	Subscriptions []subscription.Entry `json:"subscriptions"`
}

// Node is the processor's deterministic state machine: the evaluator engine
// (graph and templates) and the webhook subscriptions in force, both pure
// functions of the log prefix (invariant 3). It is not safe for concurrent
// use.
type Node struct {
	Engine        *evaluator.Engine
	Subscriptions *subscription.Registry
}

// NodeResult is what applying one record did.
type NodeResult struct {
	// Engine is the engine's result: the record's complete graph changes
	// and the external actions it requested.
	Engine evaluator.Result
	// Subscription is the registry change of a subscription event (IsSub).
	Subscription subscription.Update
	IsSub        bool
	// Notices are the record's alarm transitions and who is sent each
	// (emit.Notices), for emit.Build.
	Notices []emit.Notice
}

// ApplyResult applies rec to the engine, then to the registry, then
// decides who is told of the record's alarm transitions (emit.Notices,
// which records it in the registry). All are always applied; the
// refusals are joined in the error (deterministic, so every node refuses
// alike), and the result is valid even then.
func (n *Node) ApplyResult(rec event.Record) (NodeResult, error) {
	var res NodeResult
	var errs []error
	er, err := n.Engine.ApplyResult(rec)
	res.Engine = er
	if err != nil {
		errs = append(errs, err)
	}
	res.Subscription, res.IsSub, err = n.Subscriptions.Apply(rec)
	if err != nil {
		errs = append(errs, fmt.Errorf("subscriptions: %w", err))
	}
	res.Notices = emit.Notices(er.Changes, n.Engine.Graph(), n.Subscriptions)
	return res, errors.Join(errs...)
}

// ChangesApplied is the engine's evaluator.Engine.ChangesApplied.
func (n *Node) ChangesApplied() int64 { return n.Engine.ChangesApplied() }

// StaleSemantics reports whether the engine's state was computed under
// another build's semantics (evaluator.Engine.StaleSemantics).
func (n *Node) StaleSemantics() bool { return n.Engine.StaleSemantics() }

// SubscriptionState returns the subscriptions in force, as plain data
// sorted by id.
func (n *Node) SubscriptionState() []subscription.Entry { return n.Subscriptions.State() }

// StateSemantics is the engine's (evaluator.Engine.StateSemantics).
func (n *Node) StateSemantics() int { return n.Engine.StateSemantics() }

// Apply applies rec (Machine): ApplyResult without the result. While no
// subscription is in force after rec, nobody is told of anything, and it
// spares the engine the copies of the record's changes
// (evaluator.Engine.Apply). Else it reads them to record who is told of
// what (emit.Notices), as ApplyResult, but keeps none: they stay the
// graph's scratch (graph.Graph.ScratchChanges), as in Engine.Apply.
func (n *Node) Apply(rec event.Record) error {
	if n.Subscriptions.Len() > 0 || rec.Event.Kind == event.KindSubscriptionPut {
		g := n.Engine.Graph()
		g.ScratchChanges(true)
		defer g.ScratchChanges(false)
		// The result points into the scratch: dropped before it is reused.
		_, err := n.ApplyResult(rec)
		return err
	}
	var errs []error
	if err := n.Engine.Apply(rec); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := n.Subscriptions.Apply(rec); err != nil {
		errs = append(errs, fmt.Errorf("subscriptions: %w", err))
	}
	return errors.Join(errs...)
}

// Dump writes the canonical dump: one JSON document holding the engine's
// canonical dump and the subscriptions sorted by id, each with the open
// alarms it was told of.
func (n *Node) Dump(w io.Writer) error { return DumpNodeState(w, n.State()) }

// CaptureDump copies the node's state (State, as a snapshot's capture
// does) and returns what writes its Dump from the copy: call it under the
// lock that serialises Apply, and the returned function outside it.
func (n *Node) CaptureDump() func(io.Writer) error {
	s := n.State()
	return func(w io.Writer) error { return DumpNodeState(w, s) }
}

// DumpNodeState writes the canonical dump of the node whose State s is,
// byte for byte the node's Dump. It reads s only: a State taken under the
// lock that serialises the node's Apply (State copies) can be dumped
// outside it. The dump is written as it is rendered
// (evaluator.DumpStateValue, then a subscription at a time), not rendered
// whole in memory first.
func DumpNodeState(w io.Writer, s NodeState) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"engine":`)
	if err := evaluator.DumpStateValue(bw, s.Engine); err != nil {
		return err
	}
	bw.WriteString(`,"subscriptions":`)
	if s.Subscriptions == nil {
		bw.WriteString("null") // as json.Marshal writes a nil slice
	} else {
		bw.WriteByte('[')
		for i := range s.Subscriptions {
			b, err := json.Marshal(&s.Subscriptions[i])
			if err != nil {
				return fmt.Errorf("dump subscriptions: %w", err)
			}
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.Write(b)
		}
		bw.WriteByte(']')
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write dump: %w", err)
	}
	return nil
}

// State returns the node as plain data; it shares nothing with the node.
func (n *Node) State() NodeState {
	s := NodeState{Version: nodeStateNoTold, Engine: n.Engine.State(), Subscriptions: n.Subscriptions.State()}
	for _, e := range s.Subscriptions {
		if len(e.Told) > 0 {
			s.Version = nodeStateTold
			break
		}
	}
	return s
}

// NodeFactory makes Nodes for Reconstruct and captures them for snapshots
// (Factory and Capturer).
type NodeFactory struct {
	Config     evaluator.Config
	Normalizer *graph.Normalizer
	// Encoding is the payload encoding Capture writes (default NodeBin).
	Encoding string
}

// New returns an empty node.
func (f NodeFactory) New() (Machine, error) {
	return &Node{Engine: evaluator.New(f.Config, f.Normalizer), Subscriptions: subscription.NewRegistry()}, nil
}

// Restore decodes a NodeState in any of its encodings. An engine-only payload
// is refused with ErrUnknownEncoding (Reconstruct then uses an older
// snapshot or replays from the start): it does not hold the subscriptions.
func (f NodeFactory) Restore(ctx context.Context, encoding string, payload io.Reader) (Machine, error) {
	s, err := decodeNodeState(encoding, payload, stepOf(ctx))
	if err != nil {
		return nil, err
	}
	Step(ctx)
	n, err := RestoreNode(s, f.Config, f.Normalizer)
	if err != nil {
		return nil, err
	}
	Step(ctx)
	return n, nil
}

// RestoreNode rebuilds a node from its State.
func RestoreNode(s NodeState, cfg evaluator.Config, norm *graph.Normalizer) (*Node, error) {
	if s.Version < nodeStateNoTold || s.Version > NodeStateVersion {
		return nil, fmt.Errorf("%w: node state version %d, this build reads %d to %d", ErrUnknownVersion, s.Version, nodeStateNoTold, NodeStateVersion)
	}
	e, err := evaluator.Restore(s.Engine, cfg, norm)
	if err != nil {
		return nil, err
	}
	reg, err := subscription.Restore(s.Subscriptions)
	if err != nil {
		return nil, err
	}
	return &Node{Engine: e, Subscriptions: reg}, nil
}

// decodeNodeState decodes a NodeState; step, if not nil, is called as
// the bin encoding's decode progresses.
func decodeNodeState(encoding string, payload io.Reader, step func()) (NodeState, error) {
	var s NodeState
	switch encoding {
	case NodeBin:
		return readNodeBin(payload, step)
	case NodeGob:
		if err := decodeGob(payload, &s); err != nil {
			return s, fmt.Errorf("decode node state (gob): %w", err)
		}
	case NodeJSON:
		if err := json.NewDecoder(payload).Decode(&s); err != nil {
			return s, fmt.Errorf("decode node state (json): %w", err)
		}
	default:
		return s, fmt.Errorf("%w: %q", ErrUnknownEncoding, encoding)
	}
	return s, nil
}

// Capture captures a node that nothing else is changing (Capturer).
func (f NodeFactory) Capture(m Machine, seq int64, recordedAt time.Time) (Capture, error) {
	n, ok := m.(*Node)
	if !ok {
		return Capture{}, fmt.Errorf("capture: machine is a %T, not a node", m)
	}
	enc := f.Encoding
	if enc == "" {
		enc = NodeBin
	}
	return CaptureNode(n, seq, recordedAt, enc)
}

// CaptureNode copies the node's state (a deep copy) for a snapshot at seq.
// Call it under the lock that serialises the node's Apply; the returned
// Capture's Encode reads only the copy. encoding is NodeBin, NodeGob or
// NodeJSON.
func CaptureNode(n *Node, seq int64, recordedAt time.Time, encoding string) (Capture, error) {
	s := n.State()
	c := Capture{Seq: seq, RecordedAt: recordedAt, Encoding: encoding, Semantics: sql.Null[int]{V: s.Engine.Semantics, Valid: true}}
	switch encoding {
	case NodeBin:
		c.Encode = func(w io.Writer) error { return encodeNodeBin(w, &s) }
	case NodeGob:
		c.Encode = func(w io.Writer) error { return gob.NewEncoder(w).Encode(&s) }
	case NodeJSON:
		c.Encode = func(w io.Writer) error { return json.NewEncoder(w).Encode(&s) }
	default:
		return Capture{}, fmt.Errorf("%w: %q", ErrUnknownEncoding, encoding)
	}
	return c, nil
}
