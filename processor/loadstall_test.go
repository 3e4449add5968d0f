package processor

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/causeway/causeway/snapshot"
)

// stallRecon is a Reconstructor whose load runs for steps steps of every
// each, then returns the state at seq 1; steps < 0: it hangs until its
// context ends (a query on a frozen database).
type stallRecon struct {
	fakeRecon
	steps int
	every time.Duration
	step  func(ctx context.Context) // reports a step's progress
}

func (r *stallRecon) Reconstruct(ctx context.Context, _ snapshot.Target) (snapshot.Reconstruction, error) {
	if r.steps < 0 {
		<-ctx.Done()
		return snapshot.Reconstruction{}, ctx.Err()
	}
	for range r.steps {
		time.Sleep(r.every)
		if r.step != nil {
			r.step(ctx)
		}
	}
	return snapshot.Reconstruction{Machine: &recMachine{}, Seq: 1}, nil
}

func loadingProcessor(recon Reconstructor) (*Processor, *node) {
	cfg := Config{PollInterval: time.Second, RetryMin: time.Second, RetryMax: time.Second}
	p := &Processor{cfg: cfg, deps: Deps{Now: time.Now}}
	n := &node{cfg: cfg, log: slog.New(slog.DiscardHandler), now: time.Now, parts: Parts{Reconstructor: recon},
		f: newFollower(&fakeLog{}, 10, slog.New(slog.DiscardHandler))}
	p.node.Store(n)
	return p, n
}

// TestLoadWithoutProgressIsStuck: a node loading its state counted as
// alive whatever the load did, so a load hung on a frozen database (a
// query that never returns) kept the watchdog pinged for ever, and
// systemd never restarted the node. A load that makes no progress for
// longer than LoadStallLimit is stuck.
func TestLoadWithoutProgressIsStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, n := loadingProcessor(&stallRecon{steps: -1})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan bool, 1)
		go func() { done <- n.load(ctx) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		if !p.Alive() {
			t.Fatal("a load running for a minute is stuck")
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if p.Alive() {
			t.Fatal("a load without progress for 4 minutes is alive: the watchdog would never restart the node")
		}
		cancel()
		if <-done {
			t.Fatal("load reported success on a stop")
		}
	})
}

// TestSlowLoadThatProgressesIsAlive: a load may rightly run for longer
// than any limit (a big snapshot, a long replay): one that reports
// progress (snapshot.Step) within LoadStallLimit stays alive throughout,
// however long it runs.
func TestSlowLoadThatProgressesIsAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recon := &stallRecon{steps: 30, every: LoadStallLimit - time.Second, step: snapshot.Step}
		p, n := loadingProcessor(recon)
		done := make(chan bool, 1)
		go func() { done <- n.load(t.Context()) }()
		for i := 0; ; i++ {
			select {
			case ok := <-done:
				if !ok {
					t.Fatal("load failed")
				}
				if i < 30*int((LoadStallLimit-time.Second)/(10*time.Second)) {
					t.Fatalf("load ended after %d checks only", i)
				}
				if !p.Alive() {
					t.Fatal("not alive once loaded")
				}
				return
			default:
			}
			if !p.Alive() {
				t.Fatalf("a load progressing every %s is stuck after %d checks", recon.every, i)
			}
			time.Sleep(10 * time.Second)
			synctest.Wait()
		}
	})
}
