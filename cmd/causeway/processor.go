package main

import (
	"github.com/causeway/causeway/processor"
	"github.com/causeway/causeway/processor/election"
	"github.com/spf13/cobra"
)

func newProcessorCmd(g *globalFlags) *cobra.Command {
	var forceBootstrap bool
	cmd := &cobra.Command{
		Use:   "processor",
		Short: "Run a processor node: raft election, log following, leader duties, the live HTTP API",
		Args:  cobra.NoArgs,
		RunE: daemon(g, processorUndrained, func(cmd *cobra.Command, _ []string) error {
			defer logHangups(g.logger())()
			cfg, err := loadConfig(g.configPath, needBoth)
			if err != nil {
				return err
			}
			if forceBootstrap {
				cfg.Processor.Raft.Bootstrap = election.BootstrapForce
			}
			warnLooseSecrets(g.logger(), cfg.secretFiles(), "database", "bus", "processor")
			log := g.logger()
			reg := newRegistry()
			// The processor serves /metrics on its own API listener.
			p, err := processor.New(cfg.Processor, processor.Deps{Logger: log, Registerer: reg, Gatherer: reg})
			if err != nil {
				return invalidConfig(err) // New only validates the configuration
			}
			return serve(cmd.Context(), log.With("component", "processor"), reg, "", actor{name: "processor", run: p.Run, alive: p.Alive, started: p.Bound()})
		}),
	}
	cmd.Flags().BoolVar(&forceBootstrap, "force-bootstrap", false,
		"bootstrap an empty raft data dir from processor.raft.peers although a cluster has led on the database (processor.raft.bootstrap: force): only to recover a cluster whose every node lost its raft state")
	return cmd
}

// processorUndrained is what a forced stop of a processor may leave: raft
// elects another leader without a handover; the API answers a write once
// its events are fsynced in the API's spool.
const processorUndrained = "leadership is not handed over, so the other nodes elect a leader once its heartbeats stop; API requests in flight get no answer; events the API accepted stay in its spool, sent at the next start"
