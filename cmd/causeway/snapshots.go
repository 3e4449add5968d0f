package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/snapshot"
)

func newSnapshotsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "Inspect the processors' snapshots in the database, and remove those of older semantics",
	}
	cmd.AddCommand(newSnapshotsListCmd(g), newSnapshotsPruneStaleCmd(g))
	return cmd
}

// snapshotRow is one snapshot as the CLI shows it.
type snapshotRow struct {
	ID            int64     `json:"id"`
	Seq           int64     `json:"seq"`
	RecordedAt    time.Time `json:"recorded_at"`
	Term          int64     `json:"term"`
	FormatVersion uint16    `json:"format_version"`
	Encoding      string    `json:"encoding"`
	// Semantics is null when the row does not record it (written before
	// the column existed) and --check was not given.
	Semantics *int      `json:"semantics"`
	Stale     bool      `json:"stale"`
	Size      int64     `json:"size"`
	RawSize   int64     `json:"raw_size"`
	Chunks    int       `json:"chunks"`
	CreatedAt time.Time `json:"created_at"`
	// Problem and Error are set by --check for a snapshot reconstruction
	// would skip; Checked says the check ran.
	Checked bool   `json:"checked,omitempty"`
	Problem string `json:"problem,omitempty"`
	Error   string `json:"error,omitempty"`
}

func newSnapshotRow(m snapshot.Meta) snapshotRow {
	r := snapshotRow{ID: m.ID, Seq: m.Seq, RecordedAt: m.RecordedAt, Term: m.Term, FormatVersion: m.FormatVersion,
		Encoding: m.Encoding, Stale: m.Stale(), Size: m.Size, RawSize: m.RawSize, Chunks: m.Chunks, CreatedAt: m.CreatedAt}
	if m.Semantics.Valid {
		v := m.Semantics.V
		r.Semantics = &v
	}
	return r
}

func (r snapshotRow) semantics() string {
	switch {
	case r.Semantics == nil:
		return "?"
	case r.Stale:
		return fmt.Sprintf("%d (stale)", *r.Semantics)
	}
	return fmt.Sprint(*r.Semantics)
}

// snapshotTools opens the database and what reads its snapshots: a
// reconstructor over the evaluator engine, which restores both engine and
// node snapshots.
func snapshotTools(ctx context.Context, g *globalFlags, db *dbFlags) (*sql.DB, *store.Log, *snapshot.Reconstructor, error) {
	conn, err := db.open(ctx, g)
	if err != nil {
		return nil, nil, nil, err
	}
	l := store.NewLog(conn, nil)
	rc, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: conn, Events: l, Factory: snapshot.EngineFactory{Normalizer: graph.DefaultNormalizer()}, Logger: g.logger(),
	})
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	return conn, l, rc, nil
}

func newSnapshotsListCmd(g *globalFlags) *cobra.Command {
	var output string
	var check bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the snapshots, newest first, with the semantics of their state (stale: older than this build's)",
		Long: `List the snapshots, newest first. SEMANTICS is the apply semantics of the
state (graph/evaluator.Semantics, ` + fmt.Sprint(evaluator.Semantics) + ` in this build); "?" when the row
predates the column. --check loads, verifies and restores each snapshot as a
reconstruction would, fills in the unknown semantics, and says why an unusable
one would be skipped; it decodes every snapshot, so it takes a while.`,
		Args: cobra.NoArgs,
	}
	db := addDBFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return badInput("--output: %q is not table or json", output)
		}
		ctx := cmd.Context()
		conn, _, rc, err := snapshotTools(ctx, g, db)
		if err != nil {
			return err
		}
		defer conn.Close()
		metas, err := snapshot.NewStore(conn, nil).List(ctx, math.MaxInt64)
		if err != nil {
			return err
		}
		rows := make([]snapshotRow, 0, len(metas))
		for _, m := range metas {
			r := newSnapshotRow(m)
			if check {
				in, err := rc.Inspect(ctx, m)
				if err != nil {
					return err
				}
				r = newSnapshotRow(in.Meta)
				r.Checked, r.Problem = true, in.Problem
				if in.Err != nil {
					r.Error = in.Err.Error()
				}
			}
			rows = append(rows, r)
		}
		return historyOutput(cmd.OutOrStdout(), output, rows, func(tw *tabwriter.Writer) {
			head := []any{"ID", "SEQ", "RECORDED_AT", "TERM", "FORMAT", "ENCODING", "SEMANTICS", "SIZE", "RAW_SIZE", "CHUNKS", "CREATED_AT"}
			if check {
				head = append(head, "CHECK")
			}
			row(tw, head...)
			for _, r := range rows {
				cols := []any{r.ID, r.Seq, r.RecordedAt.Format(time.RFC3339Nano), r.Term, r.FormatVersion, r.Encoding, r.semantics(),
					r.Size, r.RawSize, r.Chunks, r.CreatedAt.Format(time.RFC3339)}
				if check {
					c := "ok"
					if r.Problem != "" {
						c = r.Problem + ": " + r.Error
					}
					cols = append(cols, c)
				}
				row(tw, cols...)
			}
		})
	}
	cmd.Flags().BoolVar(&check, "check", false, "load, verify and restore every snapshot")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newSnapshotsPruneStaleCmd(g *globalFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "prune-stale",
		Short: "Delete the snapshots of older semantics, so that restarted processors replay the log under this build's",
		Long: `A processor restored from a snapshot taken by a build of other semantics keeps
that state (and reports it: stale_semantics in causeway status). To bring the
cluster to this build's semantics while the event log still starts at seq 1:

  1. stop every processor (a running leader goes on snapshotting its state);
  2. causeway snapshots prune-stale --yes;
  3. start the processors: each replays the log from the start.

Without --yes it only lists what it would delete. It refuses when the log no
longer starts at seq 1: the moments only those snapshots reach could not be
rebuilt.`,
		Args: cobra.NoArgs,
	}
	db := addDBFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		conn, l, rc, err := snapshotTools(ctx, g, db)
		if err != nil {
			return err
		}
		defer conn.Close()
		first, err := l.First(ctx)
		if err != nil {
			return err
		}
		res, err := rc.PruneStale(ctx, first, !yes)
		out := cmd.OutOrStdout()
		if len(res.Stale) > 0 {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			row(tw, "ID", "SEQ", "RECORDED_AT", "SEMANTICS")
			for _, m := range res.Stale {
				row(tw, m.ID, m.Seq, m.RecordedAt.Format(time.RFC3339Nano), m.Semantics.V)
			}
			_ = tw.Flush()
		}
		for _, u := range res.Unusable {
			fmt.Fprintf(out, "left in place: snapshot %d (seq %d) is unusable (%s), its semantics unknown\n", u.ID, u.Seq, u.Problem)
		}
		if errors.Is(err, snapshot.ErrLogNotWhole) {
			return badInput("%v", err)
		}
		if err != nil {
			return err
		}
		switch {
		case len(res.Stale) == 0:
			fmt.Fprintf(out, "no snapshot of other semantics than this build's (%d)\n", evaluator.Semantics)
		case !yes:
			fmt.Fprintf(out, "%d stale snapshot(s) (this build's semantics: %d); stop every processor, then run again with --yes to delete them\n",
				len(res.Stale), evaluator.Semantics)
		default:
			fmt.Fprintf(out, "deleted %d stale snapshot(s); start the processors: they replay the log under semantics %d\n", res.Deleted, evaluator.Semantics)
		}
		return nil
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete (without it, only list what would be deleted)")
	return cmd
}
