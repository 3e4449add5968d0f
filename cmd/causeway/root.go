package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	configPath string
	logLevel   string
	logFormat  string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "causeway",
		Short:         "Causeway: root-cause analysis for infrastructure, now and at any past moment",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "/etc/causeway/causeway.yaml", "path of the YAML configuration file")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")

	// One constructor per subcommand; each lives in its own file.
	commands := []*cobra.Command{
		newVersionCmd(),
		newCheckConfigCmd(g),
		newMigrateCmd(g),
		newPersisterCmd(g),
		newDriverCmd(g),
		newListenerCmd(g),
		newTemplatesCmd(g),
		newProcessorCmd(g),
		newStatusCmd(g),
		newClusterCmd(g),
		newTopologyCmd(g),
		newResourcesCmd(g),
		newAlarmsCmd(g),
		newRCACmd(g),
		newReplayCmd(g),
		newSnapshotsCmd(g),
		newNotifierCmd(g),
		newWebhooksCmd(g),
		newDLQCmd(g),
		newPersistQueueCmd(g),
	}
	root.AddCommand(commands...)
	return root
}

// logger builds the process logger from the global flags.
func (g *globalFlags) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
