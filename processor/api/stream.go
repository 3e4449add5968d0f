package api

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// writeGraphJSON writes the answer of a node-link graph (a topology's or
// an RCA's), meta m, as WriteJSON writes TopologyResponse{Meta: m, Graph:
// gr}, byte for byte, but a node and a link at a time: the compact
// encoding of the whole answer is never held, only the indented one in w
// (at 100k entities the unfiltered topology took about 410 MB per
// request when encoded whole first; see BenchmarkAPI in processor).
func writeGraphJSON(w io.Writer, m Meta, gr *Graph) error {
	in := NewIndenter(w)
	// json.Encoder's Encode, as WriteJSON's, escapes HTML; it ends each
	// value with a newline, which skipNewline leaves out.
	enc := json.NewEncoder(skipNewline{in})
	head, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode meta: %w", err)
	}
	// {"seq":..,"leader":..,"node":..}: TopologyResponse encodes its
	// Meta first, then the graph.
	head = append(head[:len(head)-1], `,"graph":{"directed":`...)
	head = strconv.AppendBool(head, gr.Directed)
	head = append(head, `,"multigraph":`...)
	head = strconv.AppendBool(head, gr.Multigraph)
	head = append(head, `,"nodes":`...)
	if _, err := in.Write(head); err != nil {
		return err
	}
	if err := writeArray(in, enc, gr.Nodes); err != nil {
		return err
	}
	if _, err := in.Write([]byte(`,"links":`)); err != nil {
		return err
	}
	if err := writeArray(in, enc, gr.Links); err != nil {
		return err
	}
	if gr.InspectedIndex != nil {
		if _, err := fmt.Fprintf(in, `,"inspected_index":%d`, *gr.InspectedIndex); err != nil {
			return err
		}
	}
	if _, err := in.Write([]byte("}}\n")); err != nil {
		return err
	}
	return in.Flush()
}

// writeArray writes the items of a slice as a JSON array (null for a nil
// one, as json encodes it), one at a time with enc, which writes to in.
func writeArray[T any](in io.Writer, enc *json.Encoder, items []T) error {
	if items == nil {
		_, err := in.Write([]byte("null"))
		return err
	}
	if _, err := in.Write([]byte{'['}); err != nil {
		return err
	}
	for i := range items {
		if i > 0 {
			if _, err := in.Write([]byte{','}); err != nil {
				return err
			}
		}
		if err := enc.Encode(&items[i]); err != nil {
			return err
		}
	}
	_, err := in.Write([]byte{']'})
	return err
}

// skipNewline passes on json.Encoder's writes of one value each, without
// the newline that ends each.
type skipNewline struct{ w io.Writer }

func (s skipNewline) Write(p []byte) (int, error) {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		if _, err := s.w.Write(p[:n-1]); err != nil {
			return 0, err
		}
		return n, nil
	}
	return s.w.Write(p)
}
