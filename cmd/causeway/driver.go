package main

import (
	"fmt"
	"slices"

	"github.com/causeway/causeway/drivers"
	"github.com/causeway/causeway/drivers/alertmanager"
	"github.com/causeway/causeway/drivers/static"
	"github.com/causeway/causeway/internal/bus"
	"github.com/spf13/cobra"
)

func newDriverCmd(g *globalFlags) *cobra.Command {
	var metrics metricsFlag
	return metrics.register(&cobra.Command{
		Use:   "driver [NAME...]",
		Short: "Run datasource drivers (static, alertmanager): periodic full pulls published to the bus",
		Long: "Run the configured datasource drivers named on the command line (all configured ones when\n" +
			"none is named). Each full pull is published as sync.begin, the entities, sync.end.",
		RunE: daemon(g, driverUndrained, func(cmd *cobra.Command, names []string) error {
			defer logHangups(g.logger())()
			cfg, err := loadConfig(g.configPath, needBus)
			if err != nil {
				return err
			}
			warnLooseSecrets(g.logger(), cfg.secretFiles(), "bus", "drivers")
			// A name given must be a driver, configured: a typo would
			// otherwise leave the driver meant not running, unnoticed.
			configured := map[string]bool{"static": cfg.Drivers.Static != nil, "alertmanager": cfg.Drivers.Alertmanager != nil}
			for _, n := range names {
				ok, known := configured[n]
				switch {
				case !known:
					return badInput("unknown driver %q (the drivers are static and alertmanager)", n)
				case !ok:
					return badInput("driver %q is not configured: config %s has no drivers.%s section", n, g.configPath, n)
				}
			}
			log := g.logger()
			reg := newRegistry()
			want := func(name string) bool { return len(names) == 0 || slices.Contains(names, name) }
			var jobs []drivers.Job
			if s := cfg.Drivers.Static; s != nil && want("static") {
				if err := s.validate(); err != nil {
					return prefixErr("drivers.static", err)
				}
				d, err := static.New(s.Config, static.Deps{Logger: log})
				if err != nil {
					return prefixErr("drivers.static", err)
				}
				jobs = append(jobs, drivers.Job{Driver: d, Schedule: s.Schedule})
			}
			// The Alertmanager driver and the publisher are validated
			// apart from their constructors, which also read the token
			// file and open the spool: a file not there yet is no wrong
			// configuration (exit 1, and the unit restarts the drivers),
			// a value refused is (78).
			if a := cfg.Drivers.Alertmanager; a != nil && want("alertmanager") {
				if err := a.Validate(); err != nil {
					return prefixErr("drivers.alertmanager", err)
				}
				d, err := alertmanager.New(*a, alertmanager.Deps{Logger: log, Registerer: reg})
				if err != nil {
					return fmt.Errorf("drivers.alertmanager: %w", err)
				}
				jobs = append(jobs, d.Job())
			}
			if len(jobs) == 0 {
				return invalidConfig(fmt.Errorf("no driver to run: config %s configures none under drivers", g.configPath))
			}
			pcfg := cfg.Drivers.Publisher.config(cfg.Bus)
			if err := pcfg.Validate(); err != nil {
				return prefixErr("drivers.publisher", err)
			}
			pub, err := bus.NewPublisher(pcfg, bus.Deps{Logger: log, Registerer: reg})
			if err != nil {
				return fmt.Errorf("drivers.publisher: %w", err)
			}
			defer pub.Close()
			runner, err := drivers.New(jobs, drivers.Deps{Publisher: pub, Logger: log, Registerer: reg})
			if err != nil {
				return err
			}
			return serve(cmd.Context(), log, reg, metrics.listen(cmd, cfg.Drivers.MetricsListen),
				actor{name: "publisher", run: pub.Run, alive: pub.Alive, drain: pub.Drain},
				actor{name: "drivers", run: runner.Run, alive: runner.Alive},
			)
		}),
	})
}

// driverUndrained is what a forced stop of the drivers may leave: the
// runner abandons a pull at its context's end anyway, and a Publish
// returns once its events are fsynced in the spool.
const driverUndrained = "a pull in flight is abandoned, and pulled again, with the same event ids, at the next start; events accepted stay in the spool, sent at the next start"
