package main

import (
	"encoding/json"
	"fmt"
	"io"
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
			return f.emitList(cmd, c, false, lq, []any{"VITRAGE_ID", "TYPE", "ID", "NAME", "STATE", "PROJECT", "DELETED"}, func(tw io.Writer, v api.Resource) {
				row(tw, v.VitrageID, v.Type, v.ID, dash(v.Name), dash(v.OperationalState), dash(v.ProjectID), v.IsDeleted)
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

// emitList prints the list of resources (alarms false) or alarms that lq
// selects, read a page at a time (apiclient.EachPage) and printed as each
// page comes, so that only one page is held: as a table of header and a
// row a vitrage_id (aligned a page at a time), or as the JSON of the
// whole list as one answer would be (api.WriteJSON's, byte for byte),
// saying the seq of its first page. When the graph moved between pages,
// the table's last line and a warning on stderr say from which seq to
// which.
func (f *apiFlags) emitList(cmd *cobra.Command, c *apiclient.Client, alarms bool, lq apiclient.ListQuery, header []any, line func(io.Writer, api.Resource)) error {
	w := cmd.OutOrStdout()
	var first, last api.Meta
	pages, items := 0, 0
	var out interface {
		io.Writer
		Flush() error
	}
	if f.output == "json" {
		out = api.NewIndenter(w)
	} else {
		out = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	}
	err := c.EachPage(cmd.Context(), alarms, lq, func(r api.ResourcesResponse) error {
		last = r.Meta
		if pages == 0 {
			first = r.Meta
			if err := f.listHead(out, r.Meta, header); err != nil {
				return err
			}
		}
		pages++
		for i, it := range r.Items {
			if f.output != "json" {
				line(out, it)
				continue
			}
			raw, err := json.Marshal(it)
			if err != nil {
				return fmt.Errorf("encode %s: %w", it.VitrageID, err)
			}
			if items+i > 0 {
				raw = append([]byte{','}, raw...)
			}
			if _, err := out.Write(raw); err != nil {
				return err
			}
		}
		items += len(r.Items)
		return out.Flush()
	})
	if err != nil {
		return err
	}
	moved := ""
	if last.Seq != first.Seq {
		moved = fmt.Sprintf("the graph moved from seq %d to %d while the list was read, a page at a time: an entity is listed as of its page's seq", first.Seq, last.Seq)
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+moved)
	}
	if f.output == "json" {
		if _, err := out.Write([]byte("]}\n")); err != nil {
			return err
		}
		return out.Flush()
	}
	leader := last.Leader
	if leader == "" {
		leader = "none known"
	}
	if moved != "" {
		_, err = fmt.Fprintf(w, "\n(seq %d to %d on node %s; leader %s: %s)\n", first.Seq, last.Seq, last.Node, leader, moved)
		return err
	}
	_, err = fmt.Fprintf(w, "\n(seq %d on node %s; leader %s)\n", last.Seq, last.Node, leader)
	return err
}

// listHead writes what precedes a list's items: the table's header, or
// the JSON of the answer up to its items' array (its meta, the first
// page's).
func (f *apiFlags) listHead(out io.Writer, m api.Meta, header []any) error {
	if f.output != "json" {
		row(out, header...)
		return nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode list meta: %w", err)
	}
	// {"seq":1,"leader":"p1","node":"p1"}: the answer's head, as
	// ResourcesResponse encodes its Meta first.
	raw = append(raw[:len(raw)-1], `,"items":[`...)
	_, err = out.Write(raw)
	return err
}
