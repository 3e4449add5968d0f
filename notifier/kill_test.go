package notifier_test

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier"
)

const childEnv = "CAUSEWAY_NOTIFIER_TEST_CHILD_DSN"

// TestHelperNotifierProcess is not a test: the SIGKILL test re-executes the
// test binary to run it as a separate notifier process.
func TestHelperNotifierProcess(t *testing.T) {
	dsn := os.Getenv(childEnv)
	if dsn == "" {
		t.Skip("helper process for TestSIGKILLMidDelivery")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := notifier.New(testConfig(dsn, os.Getenv("CAUSEWAY_NOTIFIER_TEST_INSTANCE")), notifier.Deps{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func startChild(t *testing.T, dsn, instance string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNotifierProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dsn, "CAUSEWAY_NOTIFIER_TEST_INSTANCE="+instance)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// The notifier killed with SIGKILL mid-delivery and started again loses
// nothing; what it repeats are exact repeats of a webhook id, in order.
func TestSIGKILLMidDelivery(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.delay = time.Millisecond
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 1000)
	want := expectedIDs(t, db, "ops")

	first := startChild(t, dsn, "child-1")
	waitFor(t, 30*time.Second, "300 deliveries", func() bool { return len(rcv.delivered()) >= 300 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := len(rcv.delivered())
	if atKill >= 1000 {
		t.Fatalf("everything was delivered before the kill; slow the receiver down")
	}
	startChild(t, dsn, "child-2")
	waitFor(t, 60*time.Second, "1,000 deliveries", func() bool { return len(rcv.delivered()) >= 1000 })
	if diff := cmp.Diff(ids(rcv.delivered()), want); diff != "" {
		t.Fatalf("delivered (-got +want):\n%s", diff)
	}
	t.Logf("killed after %d deliveries; %d requests in all for 1000 rows", atKill, len(rcv.receipts()))
}
