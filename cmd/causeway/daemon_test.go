package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonErrorsAreLogged: the error a component stops on (here its
// configuration, which cannot be read) is its last log line, in the
// configured format and level, not a plain text line on stderr that a
// JSON log pipeline cannot parse; the exit code stays 1.
func TestDaemonErrorsAreLogged(t *testing.T) {
	bin := buildBinary(t)
	missing := filepath.Join(t.TempDir(), "causeway.yaml")
	for _, component := range []string{"persister", "processor", "driver", "listener", "notifier"} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, component, "-c", missing, "--log-format", "json")
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s with a missing config: %v, want exit 1\n%s", component, err, &stderr)
			continue
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		var last struct{ Level, Msg, Err, Component string }
		for _, l := range lines {
			if err := json.Unmarshal([]byte(l), &last); err != nil {
				t.Errorf("%s: a line of its log is not JSON (%v): %s", component, err, l)
			}
		}
		if last.Level != "ERROR" || last.Component != component || !strings.Contains(last.Err, missing) {
			t.Errorf("%s: last log line %+v, want an ERROR of the component naming the missing file", component, last)
		}
	}
}
