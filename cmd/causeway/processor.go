package main

import (
	"github.com/causeway/causeway/processor"
	"github.com/spf13/cobra"
)

func newProcessorCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "processor",
		Short: "Run a processor node: raft election, log following, leader duties, the live HTTP API",
		Args:  cobra.NoArgs,
		RunE: daemon(g, func(cmd *cobra.Command, _ []string) error {
			defer logHangups(g.logger())()
			cfg, err := loadConfig(g.configPath, needBoth)
			if err != nil {
				return err
			}
			log := g.logger()
			reg := newRegistry()
			// The processor serves /metrics on its own API listener.
			p, err := processor.New(cfg.Processor, processor.Deps{Logger: log, Registerer: reg, Gatherer: reg})
			if err != nil {
				return invalidConfig(err) // New only validates the configuration
			}
			return serve(cmd.Context(), log.With("component", "processor"), reg, "", actor{name: "processor", run: p.Run, alive: p.Alive})
		}),
	}
}
