package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// kvMachine is a small deterministic machine for unit tests: the last seq
// and source that touched each event id, and a running count. Ticks whose
// source is "refuse" are refused after counting, like a real machine that
// stays deterministic on errors.
type kvMachine struct {
	Seq   int64             `json:"seq"`
	Count int64             `json:"count"`
	KV    map[string]string `json:"kv"`
}

func newKV() *kvMachine { return &kvMachine{KV: map[string]string{}} }

func (m *kvMachine) Apply(rec event.Record) error {
	m.Seq = rec.Seq
	m.Count++
	key := rec.Event.Source
	if rec.Event.Entity != nil {
		key += "/" + rec.Event.Entity.ID
	}
	m.KV[key] = fmt.Sprintf("%d@%s", rec.Seq, rec.RecordedAt.UTC().Format("15:04:05.000000"))
	if rec.Event.Source == "refuse" {
		return fmt.Errorf("refused seq %d", rec.Seq)
	}
	return nil
}

func (m *kvMachine) Dump(w io.Writer) error {
	keys := make([]string, 0, len(m.KV))
	for k := range m.KV {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d count=%d\n", m.Seq, m.Count)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, m.KV[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (m *kvMachine) capture(at int64) Capture {
	cp := &kvMachine{Seq: m.Seq, Count: m.Count, KV: make(map[string]string, len(m.KV))}
	for k, v := range m.KV {
		cp.KV[k] = v
	}
	return Capture{Seq: at, Encoding: "kv-json", Encode: func(w io.Writer) error { return json.NewEncoder(w).Encode(cp) }}
}

type kvFactory struct{}

func (kvFactory) New() (Machine, error) { return newKV(), nil }

func (kvFactory) Restore(_ context.Context, encoding string, r io.Reader) (Machine, error) {
	if encoding != "kv-json" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEncoding, encoding)
	}
	m := newKV()
	if err := json.NewDecoder(r).Decode(m); err != nil {
		return nil, err
	}
	return m, nil
}

func dump(m Machine) string {
	var b strings.Builder
	if err := m.Dump(&b); err != nil {
		return "dump error: " + err.Error()
	}
	return b.String()
}

func (kvFactory) Capture(m Machine, seq int64, at time.Time) (Capture, error) {
	kv, ok := m.(*kvMachine)
	if !ok {
		return Capture{}, fmt.Errorf("not a kv machine: %T", m)
	}
	c := kv.capture(seq)
	c.RecordedAt = at
	return c, nil
}
