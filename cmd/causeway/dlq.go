package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/spf13/cobra"
)

// newDLQCmd inspects and re-drives the events dead-lettered on the bus
// (causeway.persist.dlq): input the persister refused, or that its
// consumer could not take, each with the reason.
func newDLQCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and re-drive dead-lettered events (causeway.persist.dlq)",
		Long: "Events the persister refused (malformed, invalid, too large, rejected by the database) or that\n" +
			"failed delivery too often are kept in causeway.persist.dlq with their reason. The OpenStack\n" +
			"listener dead-letters on the broker it consumes from: point --amqp-url there to list those.\n" +
			"Listing returns what it read to the queue (on RabbitMQ 4.0 to 4.2 that counts toward the\n" +
			"queue's delivery limit); requeue publishes valid events again and leaves the rest.",
	}
	var amqpURL, output string
	var limit int
	root.PersistentFlags().StringVar(&amqpURL, "amqp-url", "", "broker URL (default: bus.url of the configuration)")
	root.PersistentFlags().StringVarP(&output, "output", "o", "table", "output: table or json")
	root.PersistentFlags().IntVar(&limit, "limit", 100, "at most this many, from the head of the queue")
	resolve := func() (string, error) {
		if limit < 1 {
			return "", badInput("--limit: %d is not positive", limit)
		}
		if output != "table" && output != "json" {
			return "", badInput("--output: %q is not table or json", output)
		}
		return brokerURL(g, amqpURL)
	}
	show := func(cmd *cobra.Command, dls []bus.DeadLetter, header string) error {
		if output == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(orEmpty(dls))
		}
		fmt.Fprintln(cmd.OutOrStdout(), header)
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EVENT_ID\tROUTING_KEY\tPUBLISHED\tBYTES\tREASON")
		for _, d := range dls {
			published := "-"
			if !d.Published.IsZero() {
				published = d.Published.UTC().Format(time.RFC3339)
			}
			row(tw, d.MessageID, d.RoutingKey, published, d.Bytes, d.Reason)
		}
		return tw.Flush()
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters with their reason, without removing them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := resolve()
			if err != nil {
				return err
			}
			dls, total, err := bus.BrowseDeadLetters(cmd.Context(), url, limit)
			if err != nil {
				return err
			}
			return show(cmd, dls, fmt.Sprintf("%d dead letters in %s; the first %d:", total, bus.DeadLetterQueue, len(dls)))
		},
	}
	var wait time.Duration
	requeue := &cobra.Command{
		Use:   "requeue",
		Short: "Publish dead letters again to causeway.events (once their cause is fixed), removing each once confirmed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := resolve()
			if err != nil {
				return err
			}
			if wait <= 0 {
				return badInput("--wait: %s is not positive", wait)
			}
			moved, skipped, err := bus.RequeueDeadLetters(cmd.Context(), url, limit, wait)
			if err != nil {
				err = fmt.Errorf("requeue stopped after %d moved, the rest left in %s: %w", len(moved), bus.DeadLetterQueue, err)
			}
			header := fmt.Sprintf("%d dead letters published again (%d left: not valid Causeway events, they would be dead-lettered again):", len(moved), skipped)
			if perr := show(cmd, moved, header); perr != nil && err == nil {
				err = perr
			}
			return err
		},
	}
	requeue.Flags().DurationVar(&wait, "wait", 30*time.Second,
		"longest wait on the broker for one message (its basic.get, publish and confirm), and for a broker blocking the connection (resource alarm) to lift the block; past it the command fails")
	root.AddCommand(list, requeue)
	return root
}

// brokerURL is flag when given, else bus.url of the configuration.
func brokerURL(g *globalFlags, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	cfg, err := loadConfig(g.configPath, 0)
	if err != nil {
		return "", err
	}
	if cfg.Bus.URL == "" {
		return "", fmt.Errorf("no broker: set bus.url in %s or pass --amqp-url", g.configPath)
	}
	return cfg.Bus.URL, nil
}

// newPersistQueueCmd manages causeway.persist itself.
func newPersistQueueCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{Use: "persist-queue", Short: "Manage the persist queue (causeway.persist)"}
	var amqpURL string
	var timeout time.Duration
	recreate := &cobra.Command{
		Use:   "recreate",
		Short: "Give a persist queue of an earlier release its single active consumer, losing nothing",
		Long: "RabbitMQ cannot change a queue's arguments. This unbinds causeway.persist (producers keep what\n" +
			"they publish in their spools meanwhile), waits for the persisters to empty it and for you to stop\n" +
			"them all, deletes it and declares it again with its single active consumer; then start the\n" +
			"persisters. Run every component on this release first. It gives up, binding the queue again,\n" +
			"if messages come back when the persisters stop, or at --timeout.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := brokerURL(g, amqpURL)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return bus.RecreatePersistQueue(ctx, url, time.Second, func(s string) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", time.Now().UTC().Format(time.TimeOnly), s)
			})
		},
	}
	recreate.Flags().StringVar(&amqpURL, "amqp-url", "", "broker URL (default: bus.url of the configuration)")
	recreate.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up (binding the queue again) after this long")
	root.AddCommand(recreate)
	return root
}
