package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/apiclient"
	"github.com/spf13/cobra"
)

// apiFlags are the flags of every command that talks to the processor API.
type apiFlags struct {
	url, token, output string
	timeout            time.Duration
	// tls is the API's https: the CA to trust, the client's certificate.
	tls apiclient.TLS
}

func addAPIFlags(cmd *cobra.Command) *apiFlags {
	f := &apiFlags{}
	f.register(cmd)
	return f
}

// register adds the API flags to cmds (and their subcommands), bound to
// f: only to the commands that talk to the API, so that no other command
// accepts --url, --token or -o and ignores them.
func (f *apiFlags) register(cmds ...*cobra.Command) {
	def := os.Getenv("CAUSEWAY_URL")
	if def == "" {
		def = "http://127.0.0.1:8081" // processor.api.listen of deploy/causeway.yaml
	}
	for _, cmd := range cmds {
		cmd.PersistentFlags().StringVar(&f.url, "url", def, "processor API URL (env CAUSEWAY_URL)")
		// The token's default is read when the client is built, not shown
		// as the flag's default: --help would print the secret.
		cmd.PersistentFlags().StringVar(&f.token, "token", "", "bearer token (default: env CAUSEWAY_TOKEN)")
		cmd.PersistentFlags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
		cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 30*time.Second, "request timeout")
		// For processor.api.tls: a CA of the site's own, a client
		// certificate for client_ca_file.
		cmd.PersistentFlags().StringVar(&f.tls.CAFile, "ca-file", os.Getenv("CAUSEWAY_CA_FILE"), "PEM bundle of the CAs to trust for an https --url (default: the system's; env CAUSEWAY_CA_FILE)")
		cmd.PersistentFlags().StringVar(&f.tls.CertFile, "cert-file", os.Getenv("CAUSEWAY_CERT_FILE"), "client certificate (PEM) for an API of mutual TLS (env CAUSEWAY_CERT_FILE)")
		cmd.PersistentFlags().StringVar(&f.tls.KeyFile, "key-file", os.Getenv("CAUSEWAY_KEY_FILE"), "the client certificate's key (PEM) (env CAUSEWAY_KEY_FILE)")
	}
}

// client is the API client of the flags; a malformed flag value is bad
// input (exit 2).
func (f *apiFlags) client() (*apiclient.Client, error) {
	if f.output != "table" && f.output != "json" {
		return nil, badInput("--output: %q is not table or json", f.output)
	}
	// apiclient.New takes zero for its default: here it is a mistake.
	if f.timeout <= 0 {
		return nil, badInput("--timeout: %v is not positive", f.timeout)
	}
	token := f.token
	if token == "" {
		token = os.Getenv("CAUSEWAY_TOKEN")
	}
	c, err := apiclient.NewWithTLS(f.url, token, f.timeout, f.tls)
	if err != nil {
		return nil, badInput("--url, --ca-file, --cert-file, --key-file: %v", err)
	}
	return c, nil
}

// emit writes v as JSON (indented as the API answers, api.WriteJSON), or
// calls table with a tab writer.
func (f *apiFlags) emit(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	if f.output == "json" {
		return api.WriteJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// emitState is emit for an answer read from a node's graph: the table
// ends with the seq, node and leader it reflects (as the JSON says them).
func (f *apiFlags) emitState(w io.Writer, r interface{ ResponseMeta() api.Meta }, table func(tw *tabwriter.Writer)) error {
	if err := f.emit(w, r, table); err != nil || f.output == "json" {
		return err
	}
	m := r.ResponseMeta()
	leader := m.Leader
	if leader == "" {
		leader = "none known"
	}
	_, err := fmt.Fprintf(w, "\n(seq %d on node %s; leader %s)\n", m.Seq, m.Node, leader)
	return err
}

// row writes one line of a table. A value with a tab or a line break (an
// alarm's name, a dead letter's reason: they come from outside) is quoted
// (printable), so that it neither shifts the columns nor starts a row of
// its own. A value but the last longer than maxCell runes is cut (…):
// the tab writer pads every row of a column to its widest cell, and one
// name of most of an event's megabyte made each row of `alarms list` as
// wide. The last cell is not padded: it is printed whole (a show's
// value), and -o json prints every value whole.
func row(tw io.Writer, cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = printable(fmt.Sprint(c))
		if i < len(cols)-1 {
			parts[i] = cut(parts[i], maxCell)
		}
	}
	fmt.Fprintln(tw, strings.Join(parts, "\t"))
}

// maxCell is the width, in runes, past which row cuts a padded cell.
const maxCell = 120

// cut is s cut to n runes, the last of them "…", if it is longer.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n - 1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

func newStatusCmd(_ *globalFlags) *cobra.Command {
	var f *apiFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a processor node's status: role, leader, term, applied seq, lag, snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			s := r.Status
			return f.emit(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				row(tw, "node", s.NodeID)
				row(tw, "role", s.Role)
				row(tw, "leader", s.Leader)
				row(tw, "term", s.Term)
				row(tw, "leader_term", s.LeaderTerm)
				row(tw, "applied_seq", s.AppliedSeq)
				row(tw, "log_head", s.LogHead)
				row(tw, "lag", s.Lag)
				row(tw, "loaded", s.Loaded)
				row(tw, "ready", s.Ready)
				row(tw, "last_snapshot_seq", s.LastSnapshotSeq)
				if !s.LastSnapshotAt.IsZero() {
					row(tw, "last_snapshot_at", s.LastSnapshotAt.Format(time.RFC3339))
				}
				row(tw, "snapshots_written", s.SnapshotsWritten)
				row(tw, "fenced_writes", s.FencedWrites)
				row(tw, "out_of_order_applications", s.OutOfOrder)
				row(tw, "duplicates_skipped", s.DuplicatesSkipped)
				row(tw, "gaps_repaired", s.GapsRepaired)
				row(tw, "apply_errors", s.ApplyErrors)
				row(tw, "unrecoverable_gaps", s.UnrecoverableGaps)
				row(tw, "pending_outbox_rows", s.PendingRows)
				row(tw, "pending_history_items", s.PendingItems)
				if s.StaleSemantics {
					row(tw, "stale_semantics", "state loaded from a snapshot of a build with other semantics (see causeway snapshots prune-stale)")
				}
				if s.Error != "" {
					row(tw, "error", s.Error)
				}
			})
		},
	}
	f = addAPIFlags(cmd)
	return cmd
}
