package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/causeway/causeway/internal/sdnotify"
	"github.com/causeway/causeway/internal/store"
	oklogrun "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// newRegistry is a process's metrics registry, with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsReadTimeout bounds the reading of a request to the /metrics
// server, its body included.
const metricsReadTimeout = 10 * time.Second

// actor is one long-running part of a component: it runs until ctx ends.
// alive, when set, says whether it is still making progress (not stuck):
// the watchdog is pinged only while every actor's does.
//
// started, when set, is closed once the actor has bound what it must
// have to do its job (a processor's ports): READY=1 waits for it, so an
// actor that fails to bind them fails the start without READY.
//
// drain, when set, makes the actor the carrier of the others' output (a
// publisher, whose spool holds what the listener answered 2xx and what
// the drivers pulled): on a stop its run goes on until every actor
// without a drain has returned, then drain waits, for drainGrace at
// most, for it to send what they left, and only then is its run stopped.
type actor struct {
	name    string
	run     func(ctx context.Context) error
	alive   func() bool
	started <-chan struct{}
	drain   func(ctx context.Context) error
}

// drainGrace bounds an actor's drain on a stop. The stop of a listener
// (its shutdown_timeout, 20 s by default, then this, then /metrics' 5 s)
// fits the units' TimeoutStopSec (45 s).
const drainGrace = 10 * time.Second

// serve runs the actors of one component in an oklog/run group: the first to
// return (or ctx's end, on SIGTERM) stops them all, an actor with a drain
// last (see actor). It serves /metrics on
// metricsAddr when set, tells systemd READY once every actor started (each
// connects, and reconnects, by itself; one with started once that is
// closed), pings the watchdog while every
// actor is alive, and says STOPPING on the way out. It logs its start
// (with the binary's version) and a clean stop, which returns nil; an
// error is the component's to log (daemon).
func serve(ctx context.Context, log *slog.Logger, reg *prometheus.Registry, metricsAddr string, actors ...actor) error {
	parts := make([]string, len(actors))
	for i, a := range actors {
		parts[i] = a.name
	}
	log.Info("starting", "parts", parts, "version", buildVersion(), "metrics_listen", metricsAddr)
	var g oklogrun.Group
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	{ // the signal context: ending it is a clean stop
		g.Add(func() error {
			<-ctx.Done()
			return nil
		}, func(error) { cancel() })
	}
	if metricsAddr != "" {
		// /metrics outlives the actors: a stop that drains for a while
		// (a persister committing its batch, a notifier's grace) is seen by
		// the scrapes meanwhile. It is shut down once they have returned.
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listen %s: %w", metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		srv := &http.Server{
			Handler: mux,
			// Anyone who reaches the port may connect: neither a request
			// that trickles in, nor a client that does not read its
			// answer, nor an idle kept-alive connection holds one for good
			// (a scrape takes well under these; an idle scraper
			// reconnects).
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       metricsReadTimeout,
			WriteTimeout:      time.Minute,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		failed := make(chan error, 1)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("metrics server: %w", err)
			}
		}()
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		}()
		g.Add(func() error {
			select {
			case err := <-failed:
				return err
			case <-ctx.Done():
				return nil
			}
		}, func(error) { cancel() })
	}
	var intake sync.WaitGroup // the actors without a drain, running
	for _, a := range actors {
		if a.drain == nil {
			intake.Add(1)
		}
	}
	intakeDone := make(chan struct{})
	go func() { intake.Wait(); close(intakeDone) }()
	for _, a := range actors {
		if a.drain == nil {
			actx, acancel := context.WithCancel(ctx)
			g.Add(func() error {
				defer intake.Done()
				if err := a.run(actx); err != nil {
					return fmt.Errorf("%s: %w", a.name, err)
				}
				return nil
			}, func(error) { acancel() })
			continue
		}
		// Not ended with ctx: stopped once the intake has returned and
		// the drain is over.
		actx, acancel := context.WithCancel(context.WithoutCancel(ctx))
		returned := make(chan struct{})
		g.Add(func() error {
			defer close(returned)
			if err := a.run(actx); err != nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			return nil
		}, func(error) {
			go func() {
				defer acancel()
				select {
				case <-returned:
					return // failed first: nothing runs to drain
				default:
				}
				select {
				case <-intakeDone:
				case <-returned:
					return
				}
				dctx, dcancel := context.WithTimeout(context.Background(), drainGrace)
				defer dcancel()
				go func() {
					select {
					case <-returned:
						dcancel()
					case <-dctx.Done():
					}
				}()
				if err := a.drain(dctx); err != nil {
					log.Warn("stopping before everything accepted reached the broker: the rest is sent at the next start", "part", a.name, "err", err)
					return
				}
				log.Info("everything accepted reached the broker", "part", a.name)
			}()
		})
	}
	g.Add(func() error {
		for _, a := range actors {
			if a.started == nil {
				continue
			}
			select {
			case <-a.started:
			case <-ctx.Done():
				return nil // stopped, or an actor failed, before it started: no READY
			}
		}
		sdnotify.Ready(log)
		sdnotify.Watchdog(ctx, log, func() bool {
			for _, a := range actors {
				if a.alive != nil && !a.alive() {
					log.Error("stuck: the watchdog is no longer pinged, so systemd restarts the component", "part", a.name)
					return false
				}
			}
			return true
		})
		<-ctx.Done()
		return nil
	}, func(error) { sdnotify.Stopping(log) })
	if err := g.Run(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// afterDatabase is run once db answers (store.Await): a daemon started
// while the database is down (at boot, before MariaDB, or during an
// outage) has told systemd READY, and waits for it, warning at each
// failed attempt, rather than exit, which would have systemd restart it
// every RestartSec for as long as the database is away. A stop during the
// wait is a clean stop; a DSN the server refuses ends the wait at once
// with an error that is store.ErrDSN (a wrong configuration: see daemon).
func afterDatabase(db *sql.DB, log *slog.Logger, run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := store.Await(ctx, db, log); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		return run(ctx)
	}
}

// daemon wraps the RunE of a component: the error it stops on (a failure
// to start, or to keep running) is logged, its last line, in the
// configured format and level, rather than printed as plain text (which
// a JSON log pipeline could not parse), and the process exits 1, or
// exitConfig when the configuration is wrong (a database DSN the driver
// cannot parse or the server refuses, store.ErrDSN, included). An error
// with an exit code of its own (a usage error) is returned as it is. A
// stop forced by a second SIGINT or SIGTERM (see stopSignals) is logged
// too, its last line, with undrained: what the component may leave
// undone, and where that is picked up again.
func daemon(g *globalFlags, undrained string, run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		// A fatal signal (the watchdog's SIGABRT) or a panic ends a Go
		// process with exit status 2 by default: a usage error's, which
		// the units do not restart, so a stuck or crashed daemon would
		// stay down. "crash" prints every goroutine, then dies by
		// SIGABRT, which they restart.
		debug.SetTraceback("crash")
		onForcedStop(cmd.Context(), func(sig syscall.Signal) {
			g.logger().Warn("stop forced by a second signal: exiting at once, without finishing the stop",
				"component", cmd.Name(), "signal", signalName(sig), "exit", 128+int(sig), "not_drained", undrained)
		})
		err := run(cmd, args)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		var ce *configError
		if errors.As(err, &ce) || errors.Is(err, store.ErrDSN) {
			g.logger().Error("stopped: the configuration is wrong; not restarted until it is fixed", "component", cmd.Name(), "err", err, "exit", exitConfig)
			return &exitError{code: exitConfig}
		}
		g.logger().Error("stopped on error", "component", cmd.Name(), "err", err)
		return &exitError{code: 1}
	}
}

// metricsFlag is --metrics-listen, which overrides the configuration's
// metrics_listen for one process: the instances of a template unit on one
// host (causeway-persister@N, causeway-notifier@N) share one configuration
// file, so each needs an address of its own for /metrics.
type metricsFlag struct{ addr string }

func (m *metricsFlag) register(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringVar(&m.addr, "metrics-listen", "",
		`serve /metrics on this address instead of the configuration's metrics_listen ("" = none)`)
	return cmd
}

// listen is the address to serve /metrics on.
func (m *metricsFlag) listen(cmd *cobra.Command, configured string) string {
	if cmd.Flags().Changed("metrics-listen") {
		return m.addr
	}
	return configured
}
