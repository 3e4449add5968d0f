package election

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft")
	n := l.Named("net").With("peer", "p2")
	n.Warn("failed to contact", "err", "timeout")
	n.Debug("heartbeat")
	n.Log(hclog.Off, "never")
	l.StandardLogger(nil).Print("[ERR] raft: oops")
	out := buf.String()
	for _, want := range []string{"level=WARN", "msg=\"failed to contact\"", "raft_logger=raft.net", "peer=p2", "err=timeout", "level=ERROR", "oops"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "heartbeat") || strings.Contains(out, "never") {
		t.Errorf("debug or off-level line written:\n%s", out)
	}
	if l.IsDebug() || !l.IsInfo() || !l.IsError() {
		t.Errorf("levels: debug %v info %v error %v", l.IsDebug(), l.IsInfo(), l.IsError())
	}
	if got := n.Name(); got != "raft.net" {
		t.Errorf("Name() = %q", got)
	}
}

// node stands for *raft.Raft, which raft logs as a value ("entering
// leader state", "leader", r): a struct with no exported field, and a
// String method that says which node it is and in what state.
type node struct{ addr, state string }

func (n *node) String() string { return "Node at " + n.addr + " [" + n.state + "]" }

// TestHCLogAdapterJSONStringers: with the JSON log format, a value that
// raft's own hclog writes with its String method (the node of every
// state transition) must not come out as the empty object json.Marshal
// makes of it.
func TestHCLogAdapterJSONStringers(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLogger(slog.New(slog.NewJSONHandler(&buf, nil)), "raft")
	l.Info("entering leader state", "leader", &node{addr: "10.0.0.1:7000", state: "Leader"}, "term", 7)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if got, want := line["leader"], "Node at 10.0.0.1:7000 [Leader]"; got != want {
		t.Errorf("leader = %#v; want %q (line %s)", got, want, buf.String())
	}
	if got := line["term"]; got != float64(7) {
		t.Errorf("term = %#v; want the number 7", got)
	}
}

// TestHCLogAdapterFormats: raft logs its configurations with hclog.Fmt
// ("updating configuration", "servers", hclog.Fmt("%+v", servers)), which
// hclog renders as the formatted string; passed to slog as they are, they
// came out as the format and its arguments ("[%+v [...]]").
func TestHCLogAdapterFormats(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLogger(slog.New(slog.NewJSONHandler(&buf, nil)), "raft")
	l.Info("updating configuration", "servers", hclog.Fmt("%d voters: %s", 3, "n0 n1 n2"),
		"mask", hclog.Hex(255), "name", hclog.Quote(`n"0`))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for key, want := range map[string]string{"servers": "3 voters: n0 n1 n2", "mask": "0xff", "name": `n"0`} {
		if got := line[key]; got != want {
			t.Errorf("%s = %#v; want %q (line %s)", key, got, want, buf.String())
		}
	}
}
