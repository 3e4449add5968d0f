package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/causeway/causeway/internal/sdnotify"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier"
)

func newNotifierCmd(g *globalFlags) *cobra.Command {
	var metrics metricsFlag
	return metrics.register(&cobra.Command{
		Use:   "notifier",
		Short: "Run a notifier: deliver the outbox to webhook subscribers, in order, at least once",
		Args:  cobra.NoArgs,
		RunE: daemon(g, func(cmd *cobra.Command, _ []string) error {
			defer logHangups(g.logger())()
			cfg, err := loadNotifierConfig(g.configPath)
			if err != nil {
				return err
			}
			log := g.logger()
			ctx := cmd.Context()
			dsn, err := cfg.ResolveDSN()
			if err != nil {
				return err
			}
			db, err := store.Open(ctx, dsn, store.WithLogger(log.With("component", "notifier")))
			if err != nil {
				return err
			}
			defer db.Close()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			n, err := notifier.New(cfg, notifier.Deps{DB: db, Logger: log, Registerer: reg})
			if err != nil {
				return err
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			errc := make(chan error, 2)
			var srv *http.Server
			if addr := metrics.listen(cmd, cfg.MetricsListen); addr != "" {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					return fmt.Errorf("metrics listen %s: %w", addr, err)
				}
				mux := http.NewServeMux()
				mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						errc <- fmt.Errorf("metrics server: %w", err)
					}
				}()
			}
			log.Info("starting", "parts", []string{"notifier"}, "version", buildVersion(), "metrics_listen", metrics.listen(cmd, cfg.MetricsListen))
			go func() { errc <- n.Run(runCtx) }()
			sdnotify.Ready(log)
			go sdnotify.Watchdog(runCtx, log, func() bool {
				pctx, pcancel := context.WithTimeout(runCtx, 5*time.Second)
				defer pcancel()
				return db.PingContext(pctx) == nil
			})
			var runErr error
			select {
			case <-ctx.Done():
				sdnotify.Stopping(log)
				cancel()
				select {
				case runErr = <-errc:
				case <-time.After(cfg.ShutdownGrace):
					runErr = errors.New("notifier: shutdown grace period passed")
				}
			case runErr = <-errc:
				cancel()
			}
			if srv != nil {
				sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer scancel()
				_ = srv.Shutdown(sctx)
			}
			if runErr == nil {
				log.Info("stopped")
			}
			return runErr
		}),
	})
}
