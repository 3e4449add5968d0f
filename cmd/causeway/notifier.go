package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier"
)

func newNotifierCmd(g *globalFlags) *cobra.Command {
	var metrics metricsFlag
	return metrics.register(&cobra.Command{
		Use:   "notifier",
		Short: "Run a notifier: deliver the outbox to webhook subscribers, in order, at least once",
		Args:  cobra.NoArgs,
		RunE: daemon(g, notifierUndrained, func(cmd *cobra.Command, _ []string) error {
			defer logHangups(g.logger())()
			cfg, err := loadNotifierConfig(g.configPath, g.logger())
			if err != nil {
				return err
			}
			log := g.logger()
			ctx := cmd.Context()
			dsn, err := cfg.ResolveDSN()
			if err != nil {
				return err
			}
			nlog := log.With("component", "notifier")
			db, err := store.OpenLazily(dsn, store.WithLogger(nlog))
			if err != nil {
				return err
			}
			defer db.Close()
			reg := newRegistry()
			n, err := notifier.New(cfg, notifier.Deps{DB: db, Logger: log, Registerer: reg})
			if err != nil {
				return err
			}
			return serve(ctx, log, reg, metrics.listen(cmd, cfg.MetricsListen), actor{
				name: "notifier", run: withGrace(nlog, cfg.ShutdownGrace, notifierUndrained, afterDatabase(db, nlog, n.Run)), alive: n.Alive,
			})
		}),
	})
}

// withGrace bounds run's stop: once ctx ends, run has grace to return.
// A run still busy then is left behind (the process exits once serve
// returns), and the stop is a clean one all the same (nil: exit 0, so
// `systemctl stop` leaves the unit inactive, not failed), as a
// persister's or a processor's whose grace ran out, with a warning on log
// saying what may be left undrained and where it is picked up (what run
// was doing is left to the at-least-once delivery: cursors are stored as
// deliveries succeed).
func withGrace(log *slog.Logger, grace time.Duration, undrained string, run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- run(ctx) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case err := <-errc:
			return err
		case <-t.C:
			log.Warn("still busy when the shutdown grace passed: stopping without waiting any more", "shutdown_grace", grace, "not_drained", undrained)
			return nil
		}
	}
}

// notifierUndrained is what a forced stop of a notifier may leave: cursors
// are stored as deliveries succeed, and leases not given up expire.
const notifierUndrained = "a delivery whose cursor move is not stored is sent again, with the same webhook-id; the leases held pass to another instance (or the next start) once they expire (lease_ttl)"
