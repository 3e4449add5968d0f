package main

import (
	"fmt"

	"github.com/causeway/causeway/internal/store"
	"github.com/spf13/cobra"
)

func newMigrateCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations to the database (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.configPath, needDatabase)
			if err != nil {
				return err
			}
			db, err := store.Open(cmd.Context(), cfg.Database.DSN)
			if err != nil {
				return err
			}
			defer db.Close()
			applied, err := store.Migrate(cmd.Context(), db)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				_, err = fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "applied migrations %v\n", applied)
			return err
		},
	}
}
