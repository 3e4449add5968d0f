package graph

import (
	"fmt"
	"io"
	"strings"
)

// Severity colours of the DOT rendering, by operational severity.
var dotColour = map[string]string{
	OpCritical: "#e06666", OpSevere: "#f6b26b", OpWarning: "#ffd966", OpOK: "#93c47d",
}

// WriteRCADOT writes r as a Graphviz digraph: one node per alarm (labelled
// with name, type and severity, filled by severity; the analysed alarm with
// a double border; cleared ones dashed), one edge per `causes` link (dashed
// when deleted). The output is deterministic.
func (g *Graph) WriteRCADOT(w io.Writer, r *RCA) error {
	var b strings.Builder
	b.WriteString("digraph rca {\n\trankdir=LR;\n\tnode [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n")
	roots := make(map[VertexID]bool, len(r.Roots))
	for _, id := range r.Roots {
		roots[id] = true
	}
	for _, id := range r.Alarms {
		v := g.get(id)
		label := fmt.Sprintf("%s\\n%s %s", dotEscape(v.name), dotEscape(g.s(v.typ)), dotEscape(g.s(v.severity)))
		if res, ok := g.AlarmResource(id); ok {
			label += fmt.Sprintf("\\non %s %s", dotEscape(res.Type), dotEscape(res.Name))
		}
		attrs := []string{fmt.Sprintf("label=\"%s\"", label)}
		fill := dotColour[g.s(v.op)]
		if fill == "" {
			fill = "#cccccc"
		}
		attrs = append(attrs, fmt.Sprintf("fillcolor=\"%s\"", fill))
		if v.deleted {
			attrs = append(attrs, "style=\"rounded,filled,dashed\"")
		}
		if id == r.Alarm {
			attrs = append(attrs, "peripheries=2")
		}
		if roots[id] {
			attrs = append(attrs, "penwidth=2")
		}
		fmt.Fprintf(&b, "\t\"%d\" [%s];\n", id, strings.Join(attrs, ", "))
	}
	for _, e := range r.Links {
		style := ""
		if e.IsDeleted {
			style = ", style=dashed"
		}
		fmt.Fprintf(&b, "\t\"%d\" -> \"%d\" [label=\"%s\"%s];\n", e.From, e.To, dotEscape(e.Relationship), style)
	}
	b.WriteString("}\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write rca dot: %w", err)
	}
	return nil
}

// dotEscape makes s safe inside a double-quoted DOT string.
func dotEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
