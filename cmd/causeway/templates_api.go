package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/causeway/causeway/graph/template"
	"github.com/causeway/causeway/processor/api"
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
		Use: "show NAME", Short: "Show a loaded template: its body as written, and the --params it was added with", Args: cobra.ExactArgs(1),
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
			_, err = io.WriteString(cmd.OutOrStdout(), showTemplate(r.Item))
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
			body, err := readTemplateFile(args[0])
			if err != nil {
				return err
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

// showTemplate is `templates show` in table mode: the body as written and,
// when the template was added with --params, their values after it, sorted
// by name. They are YAML comments, so that the output is still the
// template (`templates show NAME > file` and add it again with the same
// --params). A name or value with a character that is not printable is
// quoted (Go syntax, printable): a control character, and the line and
// paragraph separators (U+2028, U+2029), at which YAML breaks the
// comment's line, so that what follows would be read as the template's;
// and the characters YAML refuses (U+FFFE). No blank line comes between the body and the comments: a
// block scalar that keeps its trailing line breaks (|+) would take it in.
// A body that does not end with a line break gets its params before it
// instead (after its byte order mark, if it has one): the line break a
// comment after it needs would become part of a last block scalar that
// clips (|) or keeps (|+) its breaks.
func showTemplate(t api.Template) string {
	if len(t.Params) == 0 {
		return t.Body
	}
	var c strings.Builder
	c.WriteString("# params (templates add --params):\n")
	for _, k := range slices.Sorted(maps.Keys(t.Params)) {
		fmt.Fprintf(&c, "#   %s=%s\n", printable(k), printable(t.Params[k]))
	}
	if t.Body == "" || strings.HasSuffix(t.Body, "\n") {
		return t.Body + c.String()
	}
	// YAML reads a byte order mark only at the start of the stream.
	body, bom := strings.CutPrefix(t.Body, "\ufeff")
	if bom {
		return "\ufeff" + c.String() + body
	}
	return c.String() + body
}

// printable is s, or s quoted (Go syntax) when it has a character that
// is not printable, so that it stays in a YAML comment (showTemplate) or
// in a table's cell (row).
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// readTemplateFile reads a template to add, refusing one larger than
// template.MaxSize (the processor refuses it) as bad input, without
// reading more of it than that (a device or a pipe may have no end).
func readTemplateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, template.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", path, err)
	}
	if len(body) > template.MaxSize {
		return nil, badInput("template %s: larger than %d bytes, the largest a template may be", path, template.MaxSize)
	}
	return body, nil
}
