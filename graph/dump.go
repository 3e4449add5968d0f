package graph

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Dump writes the canonical dump of the whole graph: JSON, one vertex (with
// its outgoing edges and their owners) a line, in ascending id order, then
// the open syncs and the counters. Two graphs are equal exactly when their
// dumps are equal byte for byte; deleted and placeholder elements and the
// bookkeeping that later events depend on are included.
func (g *Graph) Dump(w io.Writer) error { return DumpState(w, g.State()) }

// DumpState writes the canonical dump of the graph whose State s is, byte
// for byte the Dump of that graph. It reads s only: a State taken under
// the lock that serialises the graph's changes (State copies) can be
// dumped outside it.
func DumpState(w io.Writer, s State) error {
	if err := DumpStateValue(w, s); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("dump graph: %w", err)
	}
	return nil
}

// DumpStateValue writes the JSON value of DumpState's dump: the dump
// without its final newline, for a dump that holds the graph's (an
// engine's) to write it as it is rendered, rather than render it whole in
// memory first.
func DumpStateValue(w io.Writer, s State) error {
	bw := bufio.NewWriter(w)
	if err := writeDump(bw, s); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("dump graph: %w", err)
	}
	return nil
}

// writeDump writes the dump of s but its final newline to bw, which the
// caller flushes (the first failed write is bw's error then).
func writeDump(bw *bufio.Writer, s State) error {
	head, err := json.Marshal(dumpHead{Version: s.Version, Now: dumpTime(s.Now), Step: s.Step, NextID: s.NextID})
	if err != nil {
		return fmt.Errorf("dump graph: %w", err)
	}
	bw.WriteString(`{"graph":`)
	bw.Write(head)
	bw.WriteString(",\n\"vertices\":[")
	// One buffer for every vertex (json.Marshal would allocate each its
	// copy): Encode writes what Marshal returns, and a newline.
	var vb bytes.Buffer
	enc := json.NewEncoder(&vb)
	for i, v := range s.Vertices {
		vb.Reset()
		if err := enc.Encode(dumpVertexOf(v)); err != nil {
			return fmt.Errorf("dump vertex %d: %w", v.ID, err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		bw.Write(bytes.TrimSuffix(vb.Bytes(), []byte{'\n'}))
	}
	bw.WriteString("\n],\n\"syncs\":")
	syncs := s.Syncs
	if syncs == nil {
		syncs = []SyncState{}
	}
	b, err := json.Marshal(syncs)
	if err != nil {
		return fmt.Errorf("dump syncs: %w", err)
	}
	bw.Write(b)
	bw.WriteString("}")
	return nil
}

type dumpHead struct {
	Version int      `json:"version"`
	Now     string   `json:"now"`
	Step    int64    `json:"step"`
	NextID  VertexID `json:"next_id"`
}

type dumpVertex struct {
	ID               VertexID          `json:"vitrage_id"`
	Category         string            `json:"vitrage_category"`
	Type             string            `json:"vitrage_type"`
	ExternalID       string            `json:"id"`
	Name             string            `json:"name"`
	State            string            `json:"state"`
	Severity         string            `json:"severity"`
	DeducedState     string            `json:"vitrage_state"`
	AggregatedState  string            `json:"aggregated"`
	OperationalState string            `json:"operational"`
	ProjectID        string            `json:"project_id"`
	Source           string            `json:"vitrage_datasource_name"`
	IsDeleted        bool              `json:"vitrage_is_deleted"`
	IsPlaceholder    bool              `json:"vitrage_is_placeholder"`
	IsMarkedDown     bool              `json:"vitrage_is_marked_down"`
	SampleTimestamp  string            `json:"vitrage_sample_timestamp"`
	UpdateTimestamp  string            `json:"update_timestamp"`
	Seen             int64             `json:"seen"`
	Properties       map[string]string `json:"properties"`
	Out              []dumpEdge        `json:"out"`
}

type dumpEdge struct {
	To              VertexID `json:"target"`
	Relationship    string   `json:"relationship_type"`
	IsDeleted       bool     `json:"vitrage_is_deleted"`
	WithVertex      bool     `json:"deleted_with_vertex"`
	UpdateTimestamp string   `json:"update_timestamp"`
	Owners          []string `json:"owners"`
}

func dumpVertexOf(v VertexState) dumpVertex {
	d := dumpVertex{
		ID: v.ID, Category: v.Category, Type: v.Type, ExternalID: v.ExternalID, Name: v.Name,
		State: v.State, Severity: v.Severity, DeducedState: v.DeducedState,
		AggregatedState: v.AggregatedState, OperationalState: v.OperationalState,
		ProjectID: v.ProjectID, Source: v.Source,
		IsDeleted: v.IsDeleted, IsPlaceholder: v.IsPlaceholder, IsMarkedDown: v.IsMarkedDown,
		SampleTimestamp: dumpTime(v.SampleTimestamp), UpdateTimestamp: dumpTime(v.UpdateTimestamp),
		Seen: v.Seen, Properties: v.Properties, Out: []dumpEdge{},
	}
	if d.Properties == nil {
		d.Properties = map[string]string{}
	}
	for _, e := range v.Out {
		de := dumpEdge{To: e.To, Relationship: e.Relationship, IsDeleted: e.IsDeleted, WithVertex: e.DeletedWithVertex, UpdateTimestamp: dumpTime(e.UpdateTimestamp), Owners: []string{}}
		for _, o := range e.Owners {
			de.Owners = append(de.Owners, fmt.Sprintf("%d/%s", o.Entity, o.Source))
		}
		d.Out = append(d.Out, de)
	}
	return d
}

// dumpTime formats t in UTC with nanoseconds; the zero time is "".
func dumpTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
