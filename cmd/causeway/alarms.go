package main

import (
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/apiclient"
	"github.com/spf13/cobra"
)

func newAlarmsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "alarms", Short: "List and show alarms of a processor node's live graph; their history from the database"}
	// list and show ask the API; history and stats read the database.
	f := &apiFlags{}
	var lq apiclient.ListQuery
	list := &cobra.Command{
		Use: "list", Short: "List alarms (active ones unless --all)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			return f.emitList(cmd, c, true, lq, []any{"VITRAGE_ID", "TYPE", "NAME", "SEVERITY", "DELETED", "UPDATED"}, func(tw io.Writer, a api.Resource) {
				row(tw, a.VitrageID, a.Type, a.Name, a.OperationalState, a.IsDeleted, stamp(a.UpdateTimestamp))
			})
		},
	}
	listFilters(list, &lq, "cleared alarms")
	list.Flags().StringVar(&lq.Resource, "resource", "", "only alarms on this resource (vitrage_id)")
	show := &cobra.Command{
		Use: "show VITRAGE_ID", Short: "Show one alarm", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Alarm(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			a := r.Item
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "vitrage_id", a.VitrageID)
				row(tw, "id", a.ID)
				row(tw, "type", a.Type)
				row(tw, "name", a.Name)
				row(tw, "severity", a.Severity)
				row(tw, "operational_severity", a.OperationalState)
				row(tw, "deleted", a.IsDeleted)
				row(tw, "update_timestamp", stamp(a.UpdateTimestamp))
				for _, k := range slices.Sorted(maps.Keys(a.Properties)) {
					row(tw, "property."+k, a.Properties[k])
				}
			})
		},
	}
	count := newCountCmd(f, true, "Count alarms by operational severity (or --group-by type, project_id, source)")
	f.register(list, show, count)
	cmd.AddCommand(list, show, count, newAlarmsHistoryCmd(g), newAlarmsStatsCmd(g))
	return cmd
}

// stamp is a time of an answer in a table: RFC 3339, or "-" for none
// (which the JSON leaves out).
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}
