package snapshot

import (
	"context"
	"database/sql"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
)

// Payload encodings of the evaluator's State. The State carries its own
// layout version, which evaluator.Restore checks. EngineBin (statebin.go)
// is written by default: it decodes several times faster than gob. Gob and
// JSON payloads are still read.
const (
	EngineBin  = "evaluator-state-bin"
	EngineGob  = "evaluator-state-gob"
	EngineJSON = "evaluator-state-json"
)

// EngineFactory makes evaluator engines for Reconstruct, and captures a
// shadow engine for Writer.TakeFromLog.
type EngineFactory struct {
	Config     evaluator.Config
	Normalizer *graph.Normalizer
	// Encoding is the payload encoding Capture writes (default EngineBin).
	Encoding string
}

// Capture captures a shadow engine (Capturer).
func (f EngineFactory) Capture(m Machine, seq int64, recordedAt time.Time) (Capture, error) {
	e, ok := m.(*evaluator.Engine)
	if !ok {
		return Capture{}, fmt.Errorf("capture: machine is a %T, not an evaluator engine", m)
	}
	enc := f.Encoding
	if enc == "" {
		enc = EngineBin
	}
	return CaptureEngine(e, seq, recordedAt, enc)
}

// New returns an engine over an empty graph.
func (f EngineFactory) New() (Machine, error) {
	return evaluator.New(f.Config, f.Normalizer), nil
}

// Restore decodes an evaluator State in any of its encodings and restores
// the engine from it. It also reads a node snapshot (NodeBin, NodeGob,
// NodeJSON) and restores its engine alone.
func (f EngineFactory) Restore(ctx context.Context, encoding string, payload io.Reader) (Machine, error) {
	var s evaluator.State
	switch encoding {
	case NodeBin, NodeGob, NodeJSON:
		ns, err := decodeNodeState(encoding, payload, stepOf(ctx))
		if err != nil {
			return nil, err
		}
		if ns.Version < nodeStateNoTold || ns.Version > NodeStateVersion {
			return nil, fmt.Errorf("%w: node state version %d, this build reads %d to %d", ErrUnknownVersion, ns.Version, nodeStateNoTold, NodeStateVersion)
		}
		s = ns.Engine
	case EngineBin:
		var err error
		if s, err = readEngineBin(payload, stepOf(ctx)); err != nil {
			return nil, err
		}
	case EngineGob:
		if err := decodeGob(payload, &s); err != nil {
			return nil, fmt.Errorf("decode evaluator state (gob): %w", err)
		}
	case EngineJSON:
		if err := json.NewDecoder(payload).Decode(&s); err != nil {
			return nil, fmt.Errorf("decode evaluator state (json): %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownEncoding, encoding)
	}
	Step(ctx)
	e, err := evaluator.Restore(s, f.Config, f.Normalizer)
	if err != nil {
		return nil, err
	}
	Step(ctx)
	return e, nil
}

// CaptureEngine copies the engine's state (evaluator.Engine.State is a deep
// copy) for a snapshot at seq. Call it under the lock that serialises the
// engine's Apply; the returned Capture's Encode reads only the copy, so it
// runs after the lock is released. encoding is EngineBin, EngineGob or
// EngineJSON.
func CaptureEngine(e *evaluator.Engine, seq int64, recordedAt time.Time, encoding string) (Capture, error) {
	s := e.State()
	c := Capture{Seq: seq, RecordedAt: recordedAt, Encoding: encoding, Semantics: sql.Null[int]{V: s.Semantics, Valid: true}}
	switch encoding {
	case EngineBin:
		c.Encode = func(w io.Writer) error { return encodeEngineBin(w, &s) }
	case EngineGob:
		c.Encode = func(w io.Writer) error { return gob.NewEncoder(w).Encode(&s) }
	case EngineJSON:
		c.Encode = func(w io.Writer) error { return json.NewEncoder(w).Encode(&s) }
	default:
		return Capture{}, fmt.Errorf("%w: %q", ErrUnknownEncoding, encoding)
	}
	return c, nil
}
