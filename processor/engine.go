package processor

import (
	"fmt"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
)

// CaptureEngine captures the machine for a snapshot in the bin encodings
// (CaptureIn of the default snapshot config).
func CaptureEngine(m Machine, seq int64, recordedAt time.Time) (snapshot.Capture, error) {
	return captureIn(m, seq, recordedAt, snapshot.NodeBin, snapshot.EngineBin)
}

// CaptureIn returns a capture function writing the payload encodings cfg
// names (snapshot.Config.Encoding).
func CaptureIn(cfg snapshot.Config) func(Machine, int64, time.Time) (snapshot.Capture, error) {
	node, engine := cfg.NodeEncoding(), cfg.EngineEncoding()
	return func(m Machine, seq int64, recordedAt time.Time) (snapshot.Capture, error) {
		return captureIn(m, seq, recordedAt, node, engine)
	}
}

// captureIn captures a *snapshot.Node whole (engine and subscriptions) in
// the node encoding, or a bare *evaluator.Engine in the engine-only one.
func captureIn(m Machine, seq int64, recordedAt time.Time, node, engine string) (snapshot.Capture, error) {
	switch x := m.(type) {
	case *snapshot.Node:
		if recordedAt.IsZero() {
			// Right after a load nothing was applied here yet: the graph's
			// logical time is the recorded_at of the last record it holds.
			recordedAt = x.Engine.Graph().Now()
		}
		return snapshot.CaptureNode(x, seq, recordedAt, node)
	case *evaluator.Engine:
		if recordedAt.IsZero() {
			recordedAt = x.Graph().Now()
		}
		return snapshot.CaptureEngine(x, seq, recordedAt, engine)
	}
	return snapshot.Capture{}, fmt.Errorf("capture: machine is %T, not *snapshot.Node", m)
}

// InspectEngine gives the API a read view of an evaluator engine.
func InspectEngine(m Machine) (api.View, error) {
	switch x := m.(type) {
	case *snapshot.Node:
		return engineView{Graph: x.Engine.Graph(), e: x.Engine, subs: x.Subscriptions}, nil
	case *evaluator.Engine:
		return engineView{Graph: x.Graph(), e: x}, nil
	}
	return nil, fmt.Errorf("inspect: machine is %T, not *snapshot.Node", m)
}

type engineView struct {
	*graph.Graph
	e    *evaluator.Engine
	subs *subscription.Registry // nil: no subscriptions
}

func (v engineView) Subscriptions() []api.Subscription {
	if v.subs == nil {
		return nil
	}
	st := v.subs.State()
	out := make([]api.Subscription, len(st))
	for i, s := range st {
		out[i] = api.Subscription{ID: s.ID, Seq: s.Seq, Spec: s.Spec, Following: len(s.Told)}
	}
	return out
}

func (v engineView) Following(id string) []string {
	if v.subs == nil {
		return nil
	}
	return v.subs.Told(id)
}

func (v engineView) Templates() []api.Template {
	ts := v.e.Templates()
	out := make([]api.Template, len(ts))
	for i, t := range ts {
		out[i] = api.Template{Name: t.Name, Body: t.Body, Params: t.Params}
	}
	return out
}
