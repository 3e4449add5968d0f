//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/freeport"
)

// component is one process of the binary, restartable on the same config.
type component struct {
	name, sub, cfg, logPath string
	bin                     string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	killed   bool          // the current process was killed by the test
	starts   int
	unwanted []string // exits the test did not cause
}

func newComponent(bin, dir, name, sub, cfg string) *component {
	return &component{name: name, sub: sub, cfg: cfg, bin: bin, logPath: filepath.Join(dir, name+".log")}
}

// start runs the process (again); its output is appended to its log.
func (c *component) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts++
	fmt.Fprintf(logf, "\n===== e2e: start #%d at %s =====\n", c.starts, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin, c.sub, "--config", c.cfg, "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", c.name, err)
	}
	done := make(chan struct{})
	c.cmd, c.done, c.killed = cmd, done, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		c.mu.Lock()
		if !c.killed && c.cmd == cmd {
			c.unwanted = append(c.unwanted, fmt.Sprintf("%s exited by itself at %s: %v", c.name, time.Now().UTC().Format(time.TimeOnly), err))
		}
		c.mu.Unlock()
		close(done)
	}()
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *component) kill(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.killed = true
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of SIGKILL", c.name)
	}
}

// running reports whether the current process is alive.
func (c *component) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *component) unwantedExits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.unwanted...)
}

// tail returns the last n bytes of the component's log.
func (c *component) tail(n int) string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func freePort(t *testing.T) string {
	t.Helper()
	return freeport.Addr(t)
}

// waitFor polls cond until it holds, or fails the test when d passes or
// ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	if err := waitUntil(ctx, d, cond); err != nil {
		t.Fatalf("waiting for %s (at most %s): %v", what, d, err)
	}
}

// waitUntil polls cond every 50ms until it holds, d passes or ctx ends.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// buildBinary builds cmd/causeway into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "causeway")
	args := []string{"build", "-o", bin}
	if os.Getenv("CAUSEWAY_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "../cmd/causeway")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// services runs deploy/services.sh with one command (root only).
func services(ctx context.Context, command string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "../deploy/services.sh", command).CombinedOutput()
	if err != nil {
		return fmt.Errorf("services.sh %s: %w: %s", command, err, strings.TrimSpace(string(out)))
	}
	return nil
}
