package main

import (
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/persister"
	"github.com/causeway/causeway/snapshot"
	"github.com/spf13/cobra"
)

func newPersisterCmd(g *globalFlags) *cobra.Command {
	var metrics metricsFlag
	return metrics.register(&cobra.Command{
		Use:   "persister",
		Short: "Run a persister: bus -> the ordered event log in MariaDB",
		Args:  cobra.NoArgs,
		RunE: daemon(g, persisterUndrained, func(cmd *cobra.Command, _ []string) error {
			defer logHangups(g.logger())()
			cfg, err := loadConfig(g.configPath, needBoth)
			if err != nil {
				return err
			}
			warnLooseSecrets(g.logger(), cfg.secretFiles(), "database", "bus")
			pcfg := cfg.Persister.Config.WithDefaults()
			if err := pcfg.Validate(); err != nil {
				return prefixErr("persister", err)
			}
			log := g.logger()
			reg := newRegistry()
			ctx := cmd.Context()
			plog := log.With("component", "persister")
			db, err := store.OpenLazily(cfg.Database.DSN, store.WithLogger(plog))
			if err != nil {
				return err
			}
			defer db.Close()
			deps := bus.Deps{Logger: log, Registerer: reg}
			consumer, err := bus.NewConsumer(persister.ConsumerConfig(pcfg, cfg.Bus.conn()), deps)
			if err != nil {
				return err
			}
			seqr, err := bus.NewBatchPublisher(cfg.Bus.conn(), deps)
			if err != nil {
				return err
			}
			p, err := persister.New(pcfg, persister.Deps{
				Queue: persister.NewBusQueue(consumer), Log: store.NewLog(db, nil), Sequencer: seqr,
				// Retention's anchor must be a snapshot the processors
				// restore.
				Snapshots: snapshot.NewStore(db, log).RequireEncodings(snapshot.NodeEncodings()...),
				Logger:    log, Registerer: reg,
			})
			if err != nil {
				return err
			}
			// The persister runs its consumer and sequenced publisher itself,
			// so that it can stop them in order on shutdown.
			return serve(ctx, log, reg, metrics.listen(cmd, cfg.Persister.MetricsListen), actor{name: "persister", run: afterDatabase(db, plog, p.Run), alive: p.Alive})
		}),
	})
}

// persisterUndrained is what a forced stop of a persister may leave: its
// acks follow its commits, and the broker returns the deliveries a
// closed connection had not acked to the queue.
const persisterUndrained = "the batch in flight may be neither committed nor acked: the broker redelivers its unacked messages, and events already stored are found by event_id"
