package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newRCACmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "rca", Short: "Root-cause analysis of an alarm"}
	f := addAPIFlags(cmd)
	var p pointFlags
	var resource string
	var db *dbFlags
	show := &cobra.Command{
		Use: "show ALARM", Short: "Show the causes and effects of an alarm, live or at --seq/--at", Args: cobra.ExactArgs(1),
		Long: `Live, ALARM is a vitrage id and the processor API answers. With --at or --seq the graph
of that moment is rebuilt from the database (it works with every processor down);
ALARM is then a vitrage id (vitrage:N when N is also an alarm id), an alarm id, or a name
(with --resource) of an alarm active then, and -o dot is accepted too.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if p.set() {
				if err := apiRefused(cmd); err != nil {
					return err
				}
				return runHistoricalRCA(cmd, g, db, p, args[0], resource, f.output)
			}
			if err := db.liveRefused(cmd); err != nil {
				return err
			}
			if resource != "" {
				return badInput("--resource names an alarm's resource at --at or --seq; live, ALARM is a vitrage id")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			// Live, ALARM is a vitrage id; vitrage:N says so too.
			r, err := c.RCA(cmd.Context(), strings.TrimPrefix(args[0], "vitrage:"), 0, time.Time{})
			if err != nil {
				return err
			}
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "root causes", strings.Join(r.RootCauses, ", "))
				for _, p := range r.Paths {
					row(tw, "path", strings.Join(p, " -> "))
				}
				if r.PathsTruncated {
					row(tw, "paths", fmt.Sprintf("the first %d shortest paths only; there are more", len(r.Paths)))
				}
				fmt.Fprintln(tw)
				row(tw, "VITRAGE_ID", "TYPE", "NAME", "SEVERITY", "DELETED")
				for _, n := range r.Graph.Nodes {
					row(tw, n.VitrageID, n.Type, n.Name, n.OperationalState, n.IsDeleted)
				}
			})
		},
	}
	addPointFlags(show, &p, "reconstruct the graph")
	show.Flags().StringVar(&resource, "resource", "", "with --at/--seq: the resource (id, name or vitrage id) of the alarm named")
	db = addDBFlags(show)
	cmd.AddCommand(show)
	return cmd
}
