package main

import (
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/apiclient"
	"github.com/spf13/cobra"
)

// newResourcesCmd is Vitrage's `resource list | show | count` over the
// API of a processor node: its live graph.
func newResourcesCmd(_ *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "resources", Short: "List, show and count the resources of a processor node's live graph"}
	f := &apiFlags{}
	var lq apiclient.ListQuery
	list := &cobra.Command{
		Use: "list", Short: "List resources (not deleted ones or placeholders unless --all)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Resources(cmd.Context(), lq)
			if err != nil {
				return err
			}
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "VITRAGE_ID", "TYPE", "ID", "NAME", "STATE", "PROJECT", "DELETED")
				for _, v := range r.Items {
					row(tw, v.VitrageID, v.Type, v.ID, dash(v.Name), dash(v.OperationalState), dash(v.ProjectID), v.IsDeleted)
				}
			})
		},
	}
	listFilters(list, &lq, "deleted resources and placeholders")
	show := &cobra.Command{
		Use: "show VITRAGE_ID", Short: "Show one resource", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Resource(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			v := r.Item
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "vitrage_id", v.VitrageID)
				row(tw, "id", v.ID)
				row(tw, "type", v.Type)
				row(tw, "name", v.Name)
				row(tw, "state", dash(v.State))
				row(tw, "deduced_state", dash(v.DeducedState))
				row(tw, "aggregated_state", dash(v.AggregatedState))
				row(tw, "operational_state", dash(v.OperationalState))
				row(tw, "project_id", dash(v.ProjectID))
				row(tw, "datasource", dash(v.Source))
				row(tw, "marked_down", v.IsMarkedDown)
				row(tw, "deleted", v.IsDeleted)
				row(tw, "placeholder", v.IsPlaceholder)
				row(tw, "update_timestamp", stamp(v.UpdateTimestamp))
				for _, k := range slices.Sorted(maps.Keys(v.Properties)) {
					row(tw, "property."+k, v.Properties[k])
				}
			})
		},
	}
	count := newCountCmd(f, false, "Count resources by type (or --group-by state, project_id, source)")
	f.register(list, show, count)
	cmd.AddCommand(list, show, count)
	return cmd
}

// listFilters are the flags of a list or count of resources or alarms;
// deleted says what --all adds.
func listFilters(cmd *cobra.Command, lq *apiclient.ListQuery, deleted string) {
	cmd.Flags().StringVar(&lq.Type, "type", "", "only this type (vitrage_type)")
	cmd.Flags().StringVar(&lq.ProjectID, "project-id", "", "only this project")
	cmd.Flags().BoolVar(&lq.All, "all", false, "include "+deleted)
}

// newCountCmd is `resources count` or `alarms count`; f is registered by
// the caller.
func newCountCmd(f *apiFlags, alarms bool, short string) *cobra.Command {
	var lq apiclient.ListQuery
	cmd := &cobra.Command{
		Use: "count", Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Count(cmd.Context(), alarms, lq)
			if err != nil {
				return err
			}
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) { countTable(tw, r) })
		},
	}
	if alarms {
		listFilters(cmd, &lq, "cleared alarms")
	} else {
		listFilters(cmd, &lq, "deleted resources and placeholders")
	}
	cmd.Flags().StringVar(&lq.GroupBy, "group-by", "", "type, state, severity (alarms), project_id or source")
	if alarms {
		cmd.Flags().StringVar(&lq.Resource, "resource", "", "only alarms on this resource (vitrage_id)")
	}
	return cmd
}

func countTable(tw *tabwriter.Writer, r api.CountResponse) {
	row(tw, "GROUP", "COUNT")
	for _, k := range slices.Sorted(maps.Keys(r.Counts)) {
		row(tw, k, r.Counts[k])
	}
	row(tw, "total", r.Total)
}

// dash is s, or "-" for an empty field in a table.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
