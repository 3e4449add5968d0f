package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/causeway/causeway/processor/apiclient"
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
	// The log flags are checked before any command runs: a value the
	// logger does not know would otherwise be taken for info, or text.
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.check() }
	usageErrors(root)
	apiRefusals(root)
	return root
}

// check refuses --log-level and --log-format values the logger does not
// know, as usage errors.
func (g *globalFlags) check() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return badInput("--log-level: %q is not debug, info, warn or error", g.logLevel)
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return badInput("--log-format: %q is not text or json", g.logFormat)
	}
	return nil
}

// usageErrors makes every usage error of cmd and its subcommands (an
// unknown command or flag, a malformed flag value, a wrong number of
// arguments) exit 2, as bad input, rather than cobra's plain error (exit
// 1, a runtime failure's) or, for an unknown subcommand of a command that
// only groups others, its help and exit 0.
func usageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return asBadInput(err) })
	switch {
	case cmd.HasSubCommands() && !cmd.Runnable():
		// cobra checks the arguments of a command that does not run only
		// on the root, and answers the others with their help.
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2 // cobra's own default
			}
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
			}
			return badInput("%s", msg)
		}
	case cmd.Args != nil:
		args := cmd.Args
		cmd.Args = func(c *cobra.Command, a []string) error { return asBadInput(args(c, a)) }
	}
	for _, sub := range cmd.Commands() {
		usageErrors(sub)
	}
}

// apiRefusals makes a processor's refusal of a request as its own fault
// (400: malformed; 404: no such alarm, resource, template or member; 422:
// a membership change that would leave no quorum) exit 2 from
// every command of cmd's tree, as bad input, as the historical commands'
// refusals and the CLI's own checks of the same flags do; a failure
// (another status, a network error) stays exit 1. The error keeps the
// API's message.
func apiRefusals(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			err := run(c, args)
			var ee *exitError
			var ae *apiclient.Error
			if errors.As(err, &ee) || !errors.As(err, &ae) || !slices.Contains([]int{http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity}, ae.Status) {
				return err
			}
			return &exitError{code: exitBadInput, msg: err.Error(), err: err}
		}
	}
	for _, sub := range cmd.Commands() {
		apiRefusals(sub)
	}
}

// asBadInput is err as bad input (exit 2), unless it has its exit code
// already; nil stays nil.
func asBadInput(err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return badInput("%v", err)
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
