package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/apiclient"
	"github.com/spf13/cobra"
)

func newTopologyCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "topology", Short: "Show the entity graph of a processor node"}
	f := addAPIFlags(cmd)
	var q apiclient.TopologyQuery
	var p pointFlags
	var db *dbFlags
	show := &cobra.Command{
		Use: "show", Short: "Show the topology as a graph or a tree, live or at --at/--seq (rebuilt from the database)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.set() {
				return runHistoricalTopology(cmd, g, db, p, topologyAt{GraphType: q.GraphType, Root: q.Root, Type: q.Type, Category: q.Category, Depth: q.Depth, All: q.All}, f.output)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Topology(cmd.Context(), q)
			if err != nil {
				return err
			}
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				if r.Tree != nil {
					printTree(tw, *r.Tree, 0)
					return
				}
				row(tw, "VITRAGE_ID", "CATEGORY", "TYPE", "ID", "NAME", "STATE", "DELETED")
				for _, n := range r.Graph.Nodes {
					row(tw, n.VitrageID, n.Category, n.Type, n.ID, n.Name, n.OperationalState, n.IsDeleted)
				}
				fmt.Fprintln(tw)
				row(tw, "SOURCE", "RELATIONSHIP", "TARGET")
				for _, l := range r.Graph.Links {
					row(tw, r.Graph.Nodes[l.Source].VitrageID, l.Relationship, r.Graph.Nodes[l.Target].VitrageID)
				}
			})
		},
	}
	show.Flags().StringVar(&q.GraphType, "graph-type", "graph", "graph or tree")
	show.Flags().StringVar(&q.Root, "root", "", "vitrage_id of the root vertex")
	show.Flags().IntVar(&q.Depth, "depth", 0, "hops from the root (0: unlimited)")
	show.Flags().StringVar(&q.Type, "type", "", "only vertices of this type")
	show.Flags().StringVar(&q.Category, "category", "", "RESOURCE (default), ALARM or all")
	show.Flags().BoolVar(&q.All, "all", false, "include deleted vertices and edges")
	addPointFlags(show, &p, "rebuild the graph from the database")
	db = addDBFlags(show)
	cmd.AddCommand(show)
	return cmd
}

func printTree(tw *tabwriter.Writer, t api.Tree, depth int) {
	row(tw, strings.Repeat("  ", depth)+t.Type+" "+t.ID, t.VitrageID, t.OperationalState)
	for _, c := range t.Children {
		printTree(tw, c, depth+1)
	}
}
