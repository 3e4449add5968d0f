package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/causeway/causeway/processor/apiclient"
	"github.com/spf13/cobra"
)

// templatesAPICmds are the `templates` subcommands that talk to the
// processor API: list, show, add, delete. The `templates` command itself
// (with the local validate and test) adds them and gives them alone their
// API flags:
//
//	f := &apiFlags{}
//	cmds := templatesAPICmds(f)
//	f.register(cmds...)
//	templatesCmd.AddCommand(cmds...)
func templatesAPICmds(f *apiFlags) []*cobra.Command {
	list := &cobra.Command{
		Use: "list", Short: "List the templates loaded on a processor", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Templates(cmd.Context())
			if err != nil {
				return err
			}
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "NAME")
				for _, t := range r.Items {
					row(tw, t.Name)
				}
			})
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a loaded template", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Template(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.output == "json" {
				return f.emit(cmd.OutOrStdout(), r, nil)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), r.Item.Body)
			return err
		},
	}
	var wait time.Duration
	var params paramsFlag
	add := &cobra.Command{
		Use: "add FILE", Short: "Add (or replace) a template: validated, then published to the log", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			body, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read template: %w", err)
			}
			// A 409 names only definitions this node has not loaded: one
			// just added may not be applied yet, so it is asked again.
			deadline := time.Now().Add(wait)
			r, err := c.AddTemplate(cmd.Context(), body, params)
			var ae *apiclient.Error
			for errors.As(err, &ae) && ae.Status == 409 && time.Now().Before(deadline) {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(500 * time.Millisecond):
				}
				r, err = c.AddTemplate(cmd.Context(), body, params)
			}
			if errors.As(err, &ae) && (ae.Status == 400 || ae.Status == 409) {
				return &exitError{code: 2, msg: "template refused: " + args[0] + ": " + ae.Message}
			}
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "accepted", args[0])
				for _, id := range r.EventIDs {
					row(tw, "event_id", id)
				}
			})
		},
	}
	add.Flags().Var(&params, "params", paramsUsage)
	add.Flags().DurationVar(&wait, "wait", 10*time.Second, "how long to ask again while the template includes a definition not loaded yet (one just added)")
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a template (published to the log)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.DeleteTemplate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "deleted", args[0])
				for _, id := range r.EventIDs {
					row(tw, "event_id", id)
				}
			})
		},
	}
	return []*cobra.Command{list, show, add, del}
}
