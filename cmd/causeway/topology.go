package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/causeway/causeway/processor/api"
	"github.com/spf13/cobra"
)

func newTopologyCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "topology", Short: "Show the entity graph of a processor node"}
	f := addAPIFlags(cmd)
	var q api.TopologyQuery
	var p pointFlags
	var db *dbFlags
	show := &cobra.Command{
		Use: "show", Short: "Show the topology as a graph or a tree, live or at --at/--seq (rebuilt from the database)", Args: cobra.NoArgs,
		Long: `Live, the processor API answers; with --at or --seq the graph of that moment is
rebuilt from the database (it works with every processor down), and -o dot is
accepted too. Both answer the same query the same way (api.ComputeTopology) and
print the same document and table.

A tree follows the outgoing edges of every relationship from --root (default:
the openstack.cluster vertex), breadth first, each vertex once, as Vitrage's tree
does; a graph is every vertex that matches or, with --root, those within --depth
edges of it, edges followed both ways.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := q.Check(); err != nil {
				return badInput("%v", err)
			}
			if p.set() {
				if err := apiRefused(cmd); err != nil {
					return err
				}
				return runHistoricalTopology(cmd, g, db, p, q, f.output)
			}
			if err := db.liveRefused(cmd); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Topology(cmd.Context(), q)
			if err != nil {
				return err
			}
			return f.emitState(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) { writeTopologyTable(tw, r) })
		},
	}
	show.Flags().StringVar(&q.GraphType, "graph-type", "graph", "graph or tree")
	show.Flags().StringVar(&q.Root, "root", "", "vitrage_id of the root vertex (a tree's default: the openstack.cluster vertex)")
	show.Flags().IntVar(&q.Depth, "depth", 0, "edges from the root (0: unlimited; a graph needs --root)")
	show.Flags().StringVar(&q.Type, "type", "", "only vertices of this type")
	show.Flags().StringVar(&q.Category, "category", "", "RESOURCE (default), ALARM or all")
	show.Flags().BoolVar(&q.All, "all", false, "include deleted vertices and edges, and placeholders")
	addPointFlags(show, &p, "rebuild the graph from the database")
	db = addDBFlags(show)
	cmd.AddCommand(show)
	return cmd
}

// writeTopologyTable prints a topology answer, live or rebuilt: a tree
// indented, a graph as its vertices and then its edges.
func writeTopologyTable(tw *tabwriter.Writer, r api.TopologyResponse) {
	if r.Tree != nil {
		printTree(tw, *r.Tree, 0)
		return
	}
	row(tw, "VITRAGE_ID", "CATEGORY", "TYPE", "ID", "NAME", "STATE", "DELETED")
	for _, n := range r.Graph.Nodes {
		row(tw, n.VitrageID, n.Category, n.Type, n.ID, n.Name, n.OperationalState, n.IsDeleted)
	}
	fmt.Fprintln(tw)
	row(tw, "SOURCE", "RELATIONSHIP", "TARGET", "DELETED")
	for _, l := range r.Graph.Links {
		row(tw, r.Graph.Nodes[l.Source].VitrageID, l.Relationship, r.Graph.Nodes[l.Target].VitrageID, l.IsDeleted)
	}
}

// maxTreeIndent is the level past which printTree indents no further but
// says the level, so that a deep tree's rows keep their vertex within the
// cell row cuts, and the table does not grow with the square of its depth
// (as api.WriteJSON's indentation does not).
const maxTreeIndent = 16

func printTree(tw *tabwriter.Writer, t api.Tree, depth int) {
	indent := strings.Repeat("  ", min(depth, maxTreeIndent))
	if depth > maxTreeIndent {
		indent += fmt.Sprintf("(level %d) ", depth)
	}
	row(tw, indent+t.Type+" "+t.ID, t.VitrageID, t.OperationalState)
	for _, c := range t.Children {
		printTree(tw, c, depth+1)
	}
}

// writeTopologyDOT writes a topology answer as a Graphviz digraph (a
// tree's edges, which it does not name, unlabelled).
func writeTopologyDOT(w io.Writer, r api.TopologyResponse) error {
	var b strings.Builder
	b.WriteString("digraph topology {\n\trankdir=LR;\n\tnode [shape=box, style=rounded, fontname=\"Helvetica\"];\n")
	node := func(n api.Resource) {
		style := ""
		if n.Category == "ALARM" {
			style = ", shape=ellipse"
		}
		if n.IsDeleted {
			style += ", style=dashed"
		}
		fmt.Fprintf(&b, "\t%q [label=%q%s];\n", n.VitrageID, n.Type+"\n"+n.Name+"\n"+n.OperationalState, style)
	}
	if r.Graph != nil {
		for _, n := range r.Graph.Nodes {
			node(n)
		}
		for _, l := range r.Graph.Links {
			style := ""
			if l.IsDeleted {
				style = ", style=dashed"
			}
			fmt.Fprintf(&b, "\t%q -> %q [label=%q%s];\n", r.Graph.Nodes[l.Source].VitrageID, r.Graph.Nodes[l.Target].VitrageID, l.Relationship, style)
		}
	}
	if r.Tree != nil {
		var walk func(t api.Tree)
		walk = func(t api.Tree) {
			node(t.Resource)
			for _, c := range t.Children {
				fmt.Fprintf(&b, "\t%q -> %q;\n", t.VitrageID, c.VitrageID)
				walk(c)
			}
		}
		walk(*r.Tree)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
