package election

import (
	"bytes"
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
