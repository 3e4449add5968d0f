package processor

import (
	"fmt"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
)

// CaptureEngine captures an evaluator engine for a snapshot (gob payload).
func CaptureEngine(m Machine, seq int64, recordedAt time.Time) (snapshot.Capture, error) {
	e, ok := m.(*evaluator.Engine)
	if !ok {
		return snapshot.Capture{}, fmt.Errorf("capture: machine is %T, not *evaluator.Engine", m)
	}
	if recordedAt.IsZero() {
		// Right after a load nothing was applied here yet: the graph's
		// logical time is the recorded_at of the last record it holds.
		recordedAt = e.Graph().Now()
	}
	return snapshot.CaptureEngine(e, seq, recordedAt, snapshot.EngineGob)
}

// InspectEngine gives the API a read view of an evaluator engine.
func InspectEngine(m Machine) (api.View, error) {
	e, ok := m.(*evaluator.Engine)
	if !ok {
		return nil, fmt.Errorf("inspect: machine is %T, not *evaluator.Engine", m)
	}
	return engineView{Graph: e.Graph(), e: e}, nil
}

type engineView struct {
	*graph.Graph
	e *evaluator.Engine
}

func (v engineView) Templates() []api.Template {
	ts := v.e.Templates()
	out := make([]api.Template, len(ts))
	for i, t := range ts {
		out[i] = api.Template{Name: t.Name, Body: t.Body}
	}
	return out
}
