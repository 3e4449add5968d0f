package processor

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/emit"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/snapshot"
)

// Output is what applying one record gives the leader to write: the outbox
// rows and subscription change of notifier/emit's call contract and the
// alarm-history items of history's.
type Output struct {
	Rows  []outbox.Row
	Sub   *subscription.Update
	Items []history.Item
}

// Producer applies a record to the machine and derives its Output.
type Producer func(m Machine, rec event.Record) (Output, error)

// ProduceNode is the Producer of a *snapshot.Node. It applies rec (engine,
// then registry, then who is told of its alarm transitions), then builds
// the outbox rows (emit.Build) and runs history.Detect on the record's
// complete changes against the graph as of rec. The machine is always
// advanced; a refusal by the engine or the registry is deterministic and
// returned with the Output, which is valid even then. External actions
// (execute_mistral) are not acted on here yet.
func ProduceNode(m Machine, rec event.Record) (Output, error) {
	n, ok := m.(*snapshot.Node)
	if !ok {
		return Output{}, fmt.Errorf("produce: machine is %T, not *snapshot.Node", m)
	}
	res, applyErr := n.ApplyResult(rec)
	var out Output
	if res.IsSub {
		u := res.Subscription
		out.Sub = &u
	}
	g := n.Engine.Graph()
	// ApplyResult decided who is told of what (emit.Notices), recording it
	// in the registry: build those, never decide again.
	rows, err := emit.Build(rec, res.Notices, g)
	if err != nil {
		// A payload that cannot be encoded is a bug, never input; it is
		// the same on every node and in regeneration.
		return out, fmt.Errorf("outbox rows of seq %d: %w", rec.Seq, err)
	}
	out.Rows = rows
	out.Items = history.Detect(rec, res.Engine.Changes, g)
	return out, applyErr
}

// DefaultMaxPending bounds the rows and items a node keeps unwritten.
const DefaultMaxPending = 200_000

// pending holds what this node derived and the database may not hold yet:
// outbox rows and subscription changes covering the seqs (outFrom, seq],
// history items covering (histFrom, seq]. seq is the applied seq. Past max
// entries everything is dropped and the from marks jump to seq: a leader
// regenerates what it lacks (regenerate), so dropping never makes a gap.
// It is safe for concurrent use (the apply loop adds, the leader takes and
// prunes, a standby prunes).
type pending struct {
	mu                sync.Mutex
	max               int
	seq               int64
	outFrom, histFrom int64
	rows              []outbox.Row
	subs              []subscription.Update
	items             []history.Item
	dropped           int64 // times the bound was hit
	// base is what the machine showed when it was loaded at the from
	// marks, while a mark is still there: a leader writes it for the
	// records up to the mark when neither the log nor any snapshot can
	// rebuild them any more (fill).
	base loadBase
}

// loadBase is what a machine shows at a seq, whole: the subscriptions in
// force and what is active. Either is nil when the machine cannot say.
type loadBase struct {
	Resync *outbox.Resync
	State  *history.State
}

// baseOf reads m's loadBase; m has applied the log through seq, recorded at
// recordedAt.
func baseOf(m Machine, seq int64, recordedAt time.Time) loadBase {
	var b loadBase
	if s, ok := m.(subscriptionStater); ok {
		b.Resync = &outbox.Resync{Seq: seq, Subscriptions: s.SubscriptionState()}
	}
	if s, ok := historyState(m, seq, recordedAt); ok {
		b.State = &s
	}
	return b
}

func newPending(max int) *pending {
	if max <= 0 {
		max = DefaultMaxPending
	}
	return &pending{max: max}
}

// reset starts over at seq (a state loaded at seq: nothing derived yet),
// whose loadBase is base.
func (p *pending) reset(seq int64, base loadBase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq, p.outFrom, p.histFrom = seq, seq, seq
	p.rows, p.subs, p.items = nil, nil, nil
	p.base = base
}

// add appends the output of seq, which must be p.seq+1.
func (p *pending) add(seq int64, out Output) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq = seq
	p.rows = append(p.rows, out.Rows...)
	if out.Sub != nil {
		p.subs = append(p.subs, *out.Sub)
	}
	p.items = append(p.items, out.Items...)
	if len(p.rows)+len(p.items)+len(p.subs) > p.max {
		p.dropped++
		p.outFrom, p.histFrom = seq, seq
		p.rows, p.subs, p.items = nil, nil, nil
		// No loadBase at seq: reading it would stall the apply loop for a
		// scan of the graph, and the bound is met only while no leader
		// writes, mostly with the database away, when retention cannot
		// drop the records a leader regenerates the gap from.
		p.base = loadBase{}
	}
}

// baseAt returns the loadBase at the from mark of table when it is still at
// from, so that the records up to from stand in it.
func (p *pending) baseAt(table gapTable, from int64) loadBase {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b loadBase
	if r := p.base.Resync; table == outboxTable && r != nil && r.Seq == from && p.outFrom == from {
		b.Resync = r
	}
	if s := p.base.State; table == historyTable && s != nil && s.Seq == from && p.histFrom == from {
		b.State = s
	}
	return b
}

// take returns copies of what is pending: the outbox batch with the seq
// before its first covered one, and the history batch likewise.
func (p *pending) take() (ob outbox.Batch, outFrom int64, hb history.Batch, histFrom int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ob = outbox.Batch{Seq: p.seq, Rows: slices.Clone(p.rows), Subscriptions: slices.Clone(p.subs)}
	hb = history.Batch{Seq: p.seq, Items: slices.Clone(p.items)}
	return ob, p.outFrom, hb, p.histFrom
}

// pruneOutbox drops the outbox rows and subscription changes at or below
// head (written).
func (p *pending) pruneOutbox(head int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.rows) && p.rows[i].Seq <= head {
		i++
	}
	p.rows = p.rows[i:]
	j := 0
	for j < len(p.subs) && p.subs[j].Seq <= head {
		j++
	}
	p.subs = p.subs[j:]
	p.outFrom = max(p.outFrom, min(head, p.seq))
	if len(p.rows) == 0 {
		p.rows = nil // let the backing array go
	}
	if r := p.base.Resync; r != nil && r.Seq != p.outFrom {
		p.base.Resync = nil // the database holds what it stood for
	}
}

// pruneHistory drops the history items at or below head.
func (p *pending) pruneHistory(head int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := history.Batch{Items: p.items}
	b.Prune(head)
	p.items = b.Items
	if len(p.items) == 0 {
		p.items = nil
	}
	p.histFrom = max(p.histFrom, min(head, p.seq))
	if st := p.base.State; st != nil && st.Seq != p.histFrom {
		p.base.State = nil // the database holds what it stood for
	}
}

func (p *pending) size() (rows, items int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.rows), len(p.items)
}

// collector is a Machine that produces each record's Output into a
// pending: Reconstructor.Advance drives it to regenerate rows on a
// separate machine.
type collector struct {
	m       Machine
	produce Producer
	out     *pending
}

func (c *collector) Apply(rec event.Record) error {
	out, err := c.produce(c.m, rec)
	c.out.add(rec.Seq, out)
	return err
}

func (c *collector) Dump(w io.Writer) error { return c.m.Dump(w) }
