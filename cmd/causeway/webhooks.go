package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier"
	"github.com/causeway/causeway/notifier/subscription"
)

// newWebhooksCmd is `causeway webhooks`: manage subscriptions (add and
// delete publish subscription events to the log) and inspect delivery
// (list, show, status, dead-letters, redrive read the notifier's tables).
func newWebhooksCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "webhooks",
		Short: "Manage webhook subscriptions and inspect their delivery",
	}
	var output string

	withDB := func(cmd *cobra.Command, f func(ctx context.Context, cfg notifier.Config, db *sql.DB) error) error {
		cfg, err := loadNotifierConfig(g.configPath, nil)
		if err != nil {
			return err
		}
		dsn, err := cfg.ResolveDSN()
		if err != nil {
			return err
		}
		db, err := store.Open(cmd.Context(), dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		return f(cmd.Context(), cfg, db)
	}
	asJSON := func(w io.Writer, v any) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}

	var (
		specFile, url, format, secretRef, maxAge, backlogPolicy string
		maxBacklog                                              int
		headers, regexes                                        []string
		filter                                                  subscription.Filter
		amqpURL                                                 string
	)
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Add or replace a subscription (validated, then published to the log)",
		Long: `Add or replace a subscription. The spec comes from --spec FILE (JSON; "-" for stdin)
or from the flags. The signing secret is not part of the spec: --secret-ref names a
secret of the notifier configuration (notifier.secrets.<name>).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw []byte
			if specFile != "" {
				var err error
				if specFile == "-" {
					raw, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), subscription.MaxSpecBytes+1))
				} else {
					raw, err = os.ReadFile(specFile)
				}
				if err != nil {
					return fmt.Errorf("read spec: %w", err)
				}
				if _, err := subscription.Decode(raw); err != nil {
					return invalidSpec(err)
				}
			} else {
				spec := subscription.Spec{URL: url, Format: format, Filter: filter, SecretRef: secretRef}
				for _, h := range headers {
					k, v, ok := strings.Cut(h, "=")
					if !ok {
						return badInput("--header %q: want NAME=VALUE", h)
					}
					if spec.Headers == nil {
						spec.Headers = map[string]string{}
					}
					spec.Headers[k] = v
				}
				for _, r := range regexes {
					k, v, ok := strings.Cut(r, "=")
					if !ok {
						return badInput("--regex %q: want FIELD=PATTERN", r)
					}
					if spec.Filter.Regex == nil {
						spec.Filter.Regex = map[string]string{}
					}
					spec.Filter.Regex[k] = v
				}
				if maxAge != "" {
					d, err := time.ParseDuration(maxAge)
					if err != nil {
						return badInput("--max-age: %v", err)
					}
					spec.Delivery.MaxAge = subscription.Duration(d)
				}
				spec.Delivery.MaxBacklog, spec.Delivery.BacklogPolicy = maxBacklog, backlogPolicy
				var err error
				if raw, err = subscription.Encode(spec); err != nil {
					return invalidSpec(err)
				}
			}
			return publishSubscription(cmd, g, amqpURL, event.KindSubscriptionPut, args[0], raw)
		},
	}
	add.Flags().StringVar(&specFile, "spec", "", "JSON spec file (- for stdin); replaces the other spec flags")
	add.Flags().StringVar(&url, "url", "", "receiver URL (http or https)")
	add.Flags().StringVar(&format, "format", "", "payload format: causeway (default) or alertmanager")
	add.Flags().StringVar(&secretRef, "secret-ref", "", "name of the signing secret in notifier.secrets")
	add.Flags().StringArrayVar(&headers, "header", nil, "extra request header NAME=VALUE (repeatable)")
	add.Flags().StringSliceVar(&filter.Transitions, "transition", nil, "only these transitions: raised, cleared, severity_changed")
	add.Flags().StringSliceVar(&filter.AlarmTypes, "alarm-type", nil, "only alarms of these types")
	add.Flags().StringSliceVar(&filter.AlarmNames, "alarm-name", nil, "only alarms with these names")
	add.Flags().StringSliceVar(&filter.Severities, "severity", nil, "only alarms with these severities")
	add.Flags().StringSliceVar(&filter.ResourceTypes, "resource-type", nil, "only alarms on resources of these types")
	add.Flags().StringSliceVar(&filter.Projects, "project", nil, "only alarms of these projects")
	add.Flags().StringArrayVar(&regexes, "regex", nil, "Vitrage regex filter FIELD=PATTERN (repeatable)")
	add.Flags().StringVar(&maxAge, "max-age", "", "dead-letter rows undelivered for this long (default: notifier config)")
	add.Flags().IntVar(&maxBacklog, "max-backlog", 0, "backlog limit (default: notifier config)")
	add.Flags().StringVar(&backlogPolicy, "backlog-policy", "", "alert or dead_letter (default: notifier config)")
	add.Flags().StringVar(&amqpURL, "amqp-url", "", "broker URL (default: notifier.amqp_url)")

	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a subscription (published to the log); its pending rows go to the dead-letter table",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return publishSubscription(cmd, g, amqpURL, event.KindSubscriptionDelete, args[0], nil)
		},
	}
	del.Flags().StringVar(&amqpURL, "amqp-url", "", "broker URL (default: notifier.amqp_url)")

	list := &cobra.Command{
		Use: "list", Short: "List subscriptions with their delivery state", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(ctx context.Context, cfg notifier.Config, db *sql.DB) error {
				sts, err := notifier.Statuses(ctx, db, cfg, "")
				if err != nil {
					return err
				}
				if output == "json" {
					return asJSON(cmd.OutOrStdout(), orEmpty(sts))
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tURL\tFORMAT\tPENDING\tDEAD\tSTATE")
				for _, s := range sts {
					spec, _ := subscription.Decode(s.Spec)
					row(tw, s.ID, spec.URL, orDefault(spec.Format, subscription.FormatCauseway), s.Pending, s.DeadLetters, state(s))
				}
				return tw.Flush()
			})
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show a subscription's spec and delivery state (JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDB(cmd, func(ctx context.Context, cfg notifier.Config, db *sql.DB) error {
				sts, err := notifier.Statuses(ctx, db, cfg, args[0])
				if err != nil {
					return err
				}
				if len(sts) == 0 {
					return badInput("no subscription %q", args[0])
				}
				return asJSON(cmd.OutOrStdout(), sts[0])
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show backlogs, failures and leases; exit 2 when a backlog is over its limit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(ctx context.Context, cfg notifier.Config, db *sql.DB) error {
				sts, err := notifier.Statuses(ctx, db, cfg, "")
				if err != nil {
					return err
				}
				if output == "json" {
					if err := asJSON(cmd.OutOrStdout(), orEmpty(sts)); err != nil {
						return err
					}
				} else {
					tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tPENDING\tLIMIT\tPOLICY\tOLDEST\tDEAD\tDELIVERED\tLEASE\tSTATE\tLAST_ERROR")
					for _, s := range sts {
						oldest := "-"
						if s.OldestQueuedAt != nil {
							oldest = time.Duration(s.OldestAgeSeconds * float64(time.Second)).Round(time.Second).String()
						}
						limit := fmt.Sprint(s.MaxBacklog)
						if s.BacklogOverLimit {
							limit += " OVER"
						}
						row(tw, s.ID, s.Pending, limit, s.BacklogPolicy, oldest,
							s.DeadLetters, s.Delivered, orDefault(s.LeaseOwner, "-"), state(s), s.LastError)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
				for _, s := range sts {
					if s.BacklogOverLimit {
						return &exitError{code: 2, msg: "backlog over its limit: " + s.ID}
					}
				}
				return nil
			})
		},
	}
	var dlSub string
	var dlLimit int
	deadLetters := &cobra.Command{
		Use: "dead-letters", Short: "List dead letters (rows that could not be delivered), oldest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dlLimit < 1 {
				return badInput("--limit: %d is not positive", dlLimit)
			}
			return withDB(cmd, func(ctx context.Context, _ notifier.Config, db *sql.DB) error {
				dls, err := notifier.DeadLetters(ctx, db, dlSub, dlLimit)
				if err != nil {
					return err
				}
				if output == "json" {
					return asJSON(cmd.OutOrStdout(), orEmpty(dls))
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSUBSCRIPTION\tSEQ\tWEBHOOK_ID\tDEAD_AT\tREASON")
				for _, d := range dls {
					row(tw, d.ID, d.SubscriptionID, d.Seq, d.WebhookID, d.DeadAt.Format(time.RFC3339), d.Reason)
				}
				return tw.Flush()
			})
		},
	}
	deadLetters.Flags().StringVar(&dlSub, "subscription", "", "only this subscription's")
	deadLetters.Flags().IntVar(&dlLimit, "limit", 100, "at most this many")
	var purgeSub string
	var purgeOrphaned bool
	purge := &cobra.Command{
		Use:   "purge",
		Short: "Delete dead letters for good: a subscription's, or those of deleted subscriptions",
		Long: `Delete dead letters for good.

--subscription ID deletes every dead letter of that subscription.
--orphaned deletes those that redrive leaves because their subscription is
gone: deleted, or deleted and added again since (its letters up to the
deletion are never sent to the new one). Both together delete that
subscription's orphaned letters.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if purgeSub == "" && !purgeOrphaned {
				return badInput("purge: name --subscription or --orphaned (or both)")
			}
			return withDB(cmd, func(ctx context.Context, _ notifier.Config, db *sql.DB) error {
				n, err := notifier.PurgeDeadLetters(ctx, db, purgeSub, purgeOrphaned)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %d dead letters\n", n)
				return nil
			})
		},
	}
	purge.Flags().StringVar(&purgeSub, "subscription", "", "this subscription's")
	purge.Flags().BoolVar(&purgeOrphaned, "orphaned", false, "only those of deleted subscriptions")
	deadLetters.AddCommand(purge)
	redrive := &cobra.Command{
		Use:   "redrive",
		Short: "Send dead letters again (same webhook-id), deleting each once delivered",
		Long: `Send dead letters again (same webhook-id), deleting each once delivered.

They are sent beside the live deliveries, not in their order: a receiver
may get an old "raised" after a newer "cleared" of the same alarm. Order
by the payload's seq (or recorded_at) on the receiving side. One redrive runs
at a time on a database; a second one stops at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(ctx context.Context, cfg notifier.Config, db *sql.DB) error {
				res, err := notifier.Redrive(ctx, db, cfg, nil, dlSub)
				if err == nil || res.Sent+res.Failed+res.Orphaned > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "sent %d, failed %d\n", res.Sent, res.Failed)
				}
				// Why each failing subscription's letters stay: its
				// receiver's answer, or why it could not be reached.
				for _, id := range slices.Sorted(maps.Keys(res.Errors)) {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s: %s\n", id, res.Errors[id])
				}
				if res.Orphaned > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "left %d of deleted subscriptions (webhooks dead-letters purge --orphaned deletes them)\n", res.Orphaned)
				}
				if err != nil {
					return err
				}
				if res.Failed > 0 {
					return &exitError{code: 1, msg: fmt.Sprintf("%d dead letters could not be sent; they stay", res.Failed)}
				}
				return nil
			})
		},
	}
	redrive.Flags().StringVar(&dlSub, "subscription", "", "only this subscription's")
	// -o only where there is a table or JSON to choose between (add,
	// delete and redrive report a line; show prints JSON).
	for _, c := range []*cobra.Command{list, status, deadLetters} {
		c.Flags().StringVarP(&output, "output", "o", "table", "output: table or json")
		c.PreRunE = func(*cobra.Command, []string) error {
			if output != "table" && output != "json" {
				return badInput("--output: %q is not table or json", output)
			}
			return nil
		}
	}
	root.AddCommand(add, del, list, show, status, deadLetters, redrive)
	// following asks a processor (the state is the processors', not the
	// notifier's tables): it alone takes --url, --token and -o.
	f := &apiFlags{}
	fol := webhooksFollowingCmd(f)
	f.register(fol)
	root.AddCommand(fol)
	return root
}

// webhooksFollowingCmd is `causeway webhooks following ID`: the open
// alarms a subscription follows, from a processor's state (GET
// /v1/subscriptions/{id}): those it was told of, whose later transitions
// it is sent until they clear even when the rest of its filter no longer
// matches them. Read-only.
func webhooksFollowingCmd(f *apiFlags) *cobra.Command {
	var after string
	var limit int
	cmd := &cobra.Command{
		Use:   "following ID",
		Short: "List the open alarms a subscription follows (sent until they clear, whatever its filter says now), from a processor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 10000 {
				return badInput("--limit: %d is not in 1..10000", limit)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Subscription(cmd.Context(), args[0], after, limit)
			if err != nil {
				return err
			}
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "subscription", r.Item.ID)
				row(tw, "following", r.Item.Following)
				for _, k := range r.Following.Alarms {
					row(tw, "", k)
				}
				if r.Following.Next != "" {
					row(tw, "next page", "--after "+r.Following.Next)
				}
			})
		},
	}
	cmd.Flags().StringVar(&after, "after", "", "list the alarms after this key (the next page's)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many alarms (1..10000)")
	return cmd
}

// invalidSpec is a subscription spec refused by its validation as bad
// input (exit 2), still matching subscription.ErrInvalid; other errors
// stay as they are.
func invalidSpec(err error) error {
	if !errors.Is(err, subscription.ErrInvalid) {
		return err
	}
	return &exitError{code: exitBadInput, msg: err.Error(), err: err}
}

// orEmpty is s, or an empty slice for nil, so that JSON says [] rather
// than null for an empty list.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func state(s notifier.Status) string {
	switch {
	case s.Deleted:
		return "deleted"
	case s.FailingSince != nil:
		return "failing since " + s.FailingSince.Format(time.RFC3339)
	case s.BacklogOverLimit:
		return "backlog over limit"
	}
	return "ok"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// publishSubscription publishes one subscription event through a
// throw-away spool and waits for the broker's confirm.
func publishSubscription(cmd *cobra.Command, g *globalFlags, amqpURL string, kind event.Kind, id string, spec []byte) error {
	if amqpURL == "" {
		cfg, err := loadNotifierConfig(g.configPath, nil)
		if err != nil {
			return err
		}
		amqpURL = cfg.AMQPURL
	}
	if amqpURL == "" {
		return errors.New("no broker URL: set --amqp-url or notifier.amqp_url")
	}
	now := time.Now().UTC()
	ev := event.Event{
		V: event.Version, Source: "cli", Kind: kind, ObservedAt: now,
		EventID:      event.DeriveID("webhooks", string(kind), id, string(spec), now.Format(time.RFC3339Nano)),
		Subscription: &event.Subscription{ID: id, Spec: spec},
	}
	dir, err := os.MkdirTemp("", "causeway-webhooks-")
	if err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := bus.NewPublisher(bus.PublisherConfig{Conn: bus.Conn{URL: amqpURL}, SpoolPath: filepath.Join(dir, "spool.db")}, bus.Deps{Logger: g.logger()})
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	if err := p.Publish(ctx, ev); err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if n, _ := p.Spooled(); n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: not confirmed by the broker within 30s; not published", kind, id)
		case err := <-runErr:
			return fmt.Errorf("%s %s: publisher stopped: %w", kind, id, err)
		case <-tick.C:
		}
	}
	cancel()
	<-runErr
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s published (event %s)\n", kind, id, ev.EventID)
	return nil
}
