// Package apitest provides an in-memory api.Backend for tests of API
// clients and the CLI.
package apitest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/processor/api"
)

// Graph is a hand-built graph: vertices by id and a list of edges.
type Graph struct {
	Vertices map[graph.VertexID]graph.Vertex
	Edges    []graph.Edge
	Tmpls    []api.Template
	// Subs are the subscriptions, and Followed the keys of the alarms
	// each follows (by id, sorted).
	Subs     []api.Subscription
	Followed map[string][]string
}

// Copy copies g's vertices and edges into a Graph: what a view showed at
// one moment, served after the view has moved on. Each vertex's edges keep
// g's order.
func Copy(g api.GraphView) *Graph {
	c := &Graph{Vertices: map[graph.VertexID]graph.Vertex{}}
	for _, id := range g.VertexIDs() {
		if v, ok := g.Vertex(id); ok {
			c.Vertices[id] = v
			c.Edges = append(c.Edges, g.Out(id)...)
		}
	}
	return c
}

// VertexIDs implements api.GraphView.
func (g *Graph) VertexIDs() []graph.VertexID {
	ids := make([]graph.VertexID, 0, len(g.Vertices))
	for id := range g.Vertices {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Vertex implements api.GraphView.
func (g *Graph) Vertex(id graph.VertexID) (graph.Vertex, bool) {
	v, ok := g.Vertices[id]
	return v, ok
}

// Out implements api.GraphView.
func (g *Graph) Out(id graph.VertexID) []graph.Edge {
	var out []graph.Edge
	for _, e := range g.Edges {
		if e.From == id {
			out = append(out, e)
		}
	}
	return out
}

// In implements api.GraphView.
func (g *Graph) In(id graph.VertexID) []graph.Edge {
	var out []graph.Edge
	for _, e := range g.Edges {
		if e.To == id {
			out = append(out, e)
		}
	}
	return out
}

// Templates implements api.View.
func (g *Graph) Templates() []api.Template { return g.Tmpls }

// Subscriptions implements api.View.
func (g *Graph) Subscriptions() []api.Subscription { return g.Subs }

// Following implements api.View.
func (g *Graph) Following(id string) []string { return g.Followed[id] }

// Backend is an api.Backend over a Graph. Published events are recorded;
// membership changes succeed only when IsLeader is set.
type Backend struct {
	G       *Graph
	Seq     int64
	Leader  string
	Members []api.Member
	// IsLeader makes Join and Remove succeed (but a removal of no member,
	// api.ErrNotFound, and a join while JoinRefused is set).
	IsLeader bool
	// JoinRefused is the error a leader refuses joins with (a node's
	// wraps api.ErrRefused when the new voter does not answer).
	JoinRefused error

	mu        sync.Mutex
	published []event.Event
}

// View implements api.Backend.
func (b *Backend) View(fn func(api.View, int64) error) error { return fn(b.G, b.Seq) }

// Status implements api.Backend.
func (b *Backend) Status(context.Context) api.Status {
	return api.Status{NodeID: "test", Role: "Follower", Leader: b.Leader, AppliedSeq: b.Seq, LogHead: b.Seq, Ready: true, Loaded: true}
}

// Dump implements api.Backend.
func (b *Backend) Dump() (func(io.Writer) error, int64, error) {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, "{}")
		return err
	}, b.Seq, nil
}

// Reconstruct implements api.Backend: only the live seq exists.
func (b *Backend) Reconstruct(_ context.Context, seq int64, _ time.Time) (api.Past, error) {
	if seq != b.Seq {
		return api.Past{}, api.ErrNotFound
	}
	return api.Past{Graph: b.G, Seq: b.Seq}, nil
}

// Publish implements api.Backend.
func (b *Backend) Publish(_ context.Context, evs ...event.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, evs...)
	return nil
}

// Published returns the events published so far.
func (b *Backend) Published() []event.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.published)
}

// Cluster implements api.Backend.
func (b *Backend) Cluster() ([]api.Member, error) { return b.Members, nil }

// Join implements api.Backend.
func (b *Backend) Join(id, addr string) error {
	if !b.IsLeader {
		return api.ErrNotLeader
	}
	if b.JoinRefused != nil {
		return b.JoinRefused
	}
	b.Members = append(b.Members, api.Member{ID: id, Address: addr, Suffrage: "Voter"})
	return nil
}

// Remove implements api.Backend.
func (b *Backend) Remove(id string) error {
	if !b.IsLeader {
		return api.ErrNotLeader
	}
	if !slices.ContainsFunc(b.Members, func(m api.Member) bool { return m.ID == id }) {
		return fmt.Errorf("remove %s: %w: no such member", id, api.ErrNotFound)
	}
	b.Members = slices.DeleteFunc(b.Members, func(m api.Member) bool { return m.ID == id })
	return nil
}
