//go:build chaos

package persister_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/persister"
)

// These tests stop and start the shared RabbitMQ and MariaDB; they run
// only under `make test-chaos` (build tag chaos), one package at a time.
//
// The commands can be overridden, e.g. to run against a private server:
// CAUSEWAY_CHAOS_MARIADB_STOP / CAUSEWAY_CHAOS_MARIADB_START (default
// deploy/services.sh stop-mariadb / start-mariadb). rabbitmqctl honours
// RABBITMQ_NODENAME.

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
	t.Logf("%s: ok", strings.Join(args, " "))
}

func servicesScript(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "deploy", "services.sh")
}

// TestChaosBrokerRestartedTwice publishes 10,000 events with 10%
// duplicates while the broker's app is stopped and started twice; the log
// must hold exactly the unique events, seq dense, recorded_at ordered.
func TestChaosBrokerRestartedTwice(t *testing.T) {
	e := newEnv(t)
	p := e.startPersister(t, persister.Config{BatchSize: 200})
	pub := e.startPublisher(t)
	const n = 10000
	published := make(chan map[string]bool, 1)
	pubErr := make(chan error, 1)
	go func() {
		want, err := publishDup(pub, "chaos-broker", n)
		published <- want
		pubErr <- err
	}()
	ctx := context.Background()
	for round, at := range []int64{n / 5, n / 2} {
		waitFor(t, fmt.Sprintf("seq %d before restart %d", at, round+1), 2*time.Minute, func() (bool, string) {
			seq, _, err := e.log.Head(ctx)
			return err == nil && seq >= at, fmt.Sprintf("head %d, err %v", seq, err)
		})
		chaosCmd(t, "CAUSEWAY_CHAOS_RABBIT_STOP", "rabbitmqctl", "stop_app")
		chaosCmd(t, "CAUSEWAY_CHAOS_RABBIT_START", "rabbitmqctl", "start_app")
	}
	want := <-published
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every unique event committed", 5*time.Minute, func() (bool, string) {
		seq, _, err := e.log.Head(ctx)
		return err == nil && seq >= n, fmt.Sprintf("head %d, err %v", seq, err)
	})
	waitFor(t, "the publisher's spool drained", 2*time.Minute, func() (bool, string) {
		k, _ := pub.Spooled()
		return k == 0, fmt.Sprintf("%d spooled", k)
	})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
}

// TestChaosMariaDBStoppedMidStream stops MariaDB for 30 seconds while
// events flow: the persister acks nothing meanwhile, retries, and once the
// database is back the log holds every event exactly once.
func TestChaosMariaDBStoppedMidStream(t *testing.T) {
	e := newEnv(t)
	p := e.startPersister(t, persister.Config{BatchSize: 200, RetryMax: 2 * time.Second})
	pub := e.startPublisher(t)
	const n = 10000
	published := make(chan map[string]bool, 1)
	pubErr := make(chan error, 1)
	go func() {
		want, err := publishDup(pub, "chaos-db", n)
		published <- want
		pubErr <- err
	}()
	ctx := context.Background()
	waitFor(t, "a third of the events committed", 2*time.Minute, func() (bool, string) {
		seq, _, err := e.log.Head(ctx)
		return err == nil && seq >= n/3, fmt.Sprintf("head %d, err %v", seq, err)
	})
	script := servicesScript(t)
	chaosCmd(t, "CAUSEWAY_CHAOS_MARIADB_STOP", script, "stop-mariadb")
	stopped := time.Now()
	// The outage itself lasts 30 seconds; meanwhile the persister must be
	// retrying, not acking.
	waitFor(t, "the persister retrying", 30*time.Second, func() (bool, string) {
		r := p.counter(t, "causeway_persister_commit_retries_total")
		return r >= 3, fmt.Sprintf("%v retries", r)
	})
	committedWhileDown := p.counter(t, "causeway_persister_events_committed_total")
	time.Sleep(time.Until(stopped.Add(30 * time.Second)))
	if c := p.counter(t, "causeway_persister_events_committed_total"); c != committedWhileDown {
		t.Errorf("committed_total went from %v to %v while MariaDB was down", committedWhileDown, c)
	}
	chaosCmd(t, "CAUSEWAY_CHAOS_MARIADB_START", script, "start-mariadb")

	want := <-published
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every unique event committed", 5*time.Minute, func() (bool, string) {
		seq, _, err := e.log.Head(ctx)
		return err == nil && seq >= n, fmt.Sprintf("head %d, err %v", seq, err)
	})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
}
