package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newRCACmd(_ *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "rca", Short: "Root-cause analysis of an alarm"}
	f := addAPIFlags(cmd)
	var seq int64
	var at string
	show := &cobra.Command{
		Use: "show ALARM_VITRAGE_ID", Short: "Show the causes and effects of an alarm, live or at --seq/--at", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var t time.Time
			if at != "" {
				if t, err = time.Parse(time.RFC3339Nano, at); err != nil {
					return fmt.Errorf("--at: %q is not an RFC 3339 time", at)
				}
			}
			r, err := c.RCA(cmd.Context(), args[0], seq, t)
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "seq", r.Seq)
				row(tw, "historical", r.Historical)
				row(tw, "root causes", strings.Join(r.RootCauses, ", "))
				for _, p := range r.Paths {
					row(tw, "path", strings.Join(p, " -> "))
				}
				fmt.Fprintln(tw)
				row(tw, "VITRAGE_ID", "TYPE", "NAME", "SEVERITY", "DELETED")
				for _, n := range r.Graph.Nodes {
					row(tw, n.VitrageID, n.Type, n.Name, n.OperationalState, n.IsDeleted)
				}
			})
		},
	}
	show.Flags().Int64Var(&seq, "seq", 0, "reconstruct the graph at this seq")
	show.Flags().StringVar(&at, "at", "", "reconstruct the graph at this time (RFC 3339)")
	cmd.AddCommand(show)
	return cmd
}
