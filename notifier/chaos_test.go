//go:build chaos

package notifier_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// This test stops and starts the shared MariaDB; it runs only under
// `make test-chaos` (build tag chaos). The commands can be overridden with
// CAUSEWAY_CHAOS_MARIADB_STOP / CAUSEWAY_CHAOS_MARIADB_START (default
// deploy/services.sh stop-mariadb / start-mariadb).

func chaosCmd(t *testing.T, env string, def ...string) {
	t.Helper()
	args := def
	if v := os.Getenv(env); v != "" {
		args = []string{"sh", "-c", v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestChaosMariaDBStoppedMidDelivery: the database goes away while rows are
// being delivered; once it is back, every row arrives, in order, repeats
// only as exact repeats of a webhook id.
func TestChaosMariaDBStoppedMidDelivery(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "deploy", "services.sh")
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.delay = 2 * time.Millisecond
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 1000)
	want := expectedIDs(t, db, "ops")
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	waitFor(t, 30*time.Second, "200 deliveries", func() bool { return len(rcv.delivered()) >= 200 })
	chaosCmd(t, "CAUSEWAY_CHAOS_MARIADB_STOP", script, "stop-mariadb")
	stoppedAt := len(rcv.delivered())
	chaosCmd(t, "CAUSEWAY_CHAOS_MARIADB_START", script, "start-mariadb")
	waitFor(t, 2*time.Minute, "1,000 deliveries", func() bool { return len(rcv.delivered()) >= 1000 })
	if diff := cmp.Diff(ids(rcv.delivered()), want); diff != "" {
		t.Fatalf("delivered (-got +want):\n%s", diff)
	}
	t.Logf("database stopped after %d deliveries; %d requests in all", stoppedAt, len(rcv.receipts()))
}
