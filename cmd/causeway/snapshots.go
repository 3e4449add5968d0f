package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
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
		Short: "Inspect the processors' snapshots in the database, and remove those of other semantics than this build's",
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
	// Semantics and Stale are null when the row does not record the
	// semantics (written before the column existed) and --check was not
	// given.
	Semantics *int      `json:"semantics"`
	Stale     *bool     `json:"stale"`
	Size      int64     `json:"size"`
	RawSize   int64     `json:"raw_size"`
	Chunks    int       `json:"chunks"`
	CreatedAt time.Time `json:"created_at"`
	// Check is what --check found: "ok", "historical only" (processors
	// skip it: Problem says why), or unusable (Problem and Error say why).
	Check   string `json:"check,omitempty"`
	Problem string `json:"problem,omitempty"`
	Error   string `json:"error,omitempty"`
}

func newSnapshotRow(m snapshot.Meta) snapshotRow {
	r := snapshotRow{ID: m.ID, Seq: m.Seq, RecordedAt: m.RecordedAt, Term: m.Term, FormatVersion: m.FormatVersion,
		Encoding: m.Encoding, Size: m.Size, RawSize: m.RawSize, Chunks: m.Chunks, CreatedAt: m.CreatedAt}
	if m.Semantics.Valid {
		v, stale := m.Semantics.V, m.Stale()
		r.Semantics, r.Stale = &v, &stale
	}
	return r
}

func (r snapshotRow) semantics() string {
	switch {
	case r.Semantics == nil:
		return "?"
	case *r.Stale:
		return fmt.Sprintf("%d (stale)", *r.Semantics)
	}
	return fmt.Sprint(*r.Semantics)
}

func newSnapshotsListCmd(g *globalFlags) *cobra.Command {
	var output string
	var check bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the snapshots, newest first, with the semantics of their state (stale: other than this build's)",
		Long: `List the snapshots, newest first. SEMANTICS is the apply semantics of the
state (graph/evaluator.Semantics, ` + fmt.Sprint(evaluator.Semantics) + ` in this build); "?" when the row
predates the column. --check loads, verifies and restores each snapshot as the
processors' reconstruction does, and as historical queries do (which also read
engine-only snapshots); it fills in the unknown semantics and says why an
unusable one is skipped. It decodes every snapshot, so it takes a while.`,
		Args: cobra.NoArgs,
	}
	db := addDBFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return badInput("--output: %q is not table or json", output)
		}
		ctx := cmd.Context()
		h, err := db.historian(ctx, g)
		if err != nil {
			return err
		}
		defer h.db.Close()
		// What the processors restore: node snapshots only.
		procs, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
			DB: h.db, Events: h.log, Factory: snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}, Logger: g.logger(),
		})
		if err != nil {
			return err
		}
		metas, err := h.snaps.List(ctx, math.MaxInt64)
		if err != nil {
			return err
		}
		rows := make([]snapshotRow, 0, len(metas))
		for _, m := range metas {
			r := newSnapshotRow(m)
			if check {
				if r, err = checkSnapshot(ctx, procs, h.recon, m); err != nil {
					return err
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
					c := r.Check
					if r.Problem != "" {
						c += " (" + r.Problem + ": " + r.Error + ")"
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

// checkSnapshot inspects m as the processors restore snapshots (procs) and,
// if they cannot, as historical queries do (hist).
func checkSnapshot(ctx context.Context, procs, hist *snapshot.Reconstructor, m snapshot.Meta) (snapshotRow, error) {
	in, err := procs.Inspect(ctx, m)
	if err != nil {
		return snapshotRow{}, err
	}
	check := "ok"
	if in.Problem != "" {
		byProcs := in
		if in, err = hist.Inspect(ctx, m); err != nil {
			return snapshotRow{}, err
		}
		check = "historical only"
		if in.Problem != "" {
			check = "unusable"
		} else {
			in.Problem, in.Err = byProcs.Problem, byProcs.Err
		}
	}
	r := newSnapshotRow(in.Meta)
	r.Check, r.Problem = check, in.Problem
	if in.Err != nil {
		r.Error = in.Err.Error()
	}
	return r, nil
}

func newSnapshotsPruneStaleCmd(g *globalFlags) *cobra.Command {
	var yes, force bool
	cmd := &cobra.Command{
		Use:   "prune-stale",
		Short: "Delete the snapshots of other semantics than this build's, so that restarted processors replay the log under this build's",
		Long: `A processor restored from a snapshot taken by a build of other semantics keeps
that state (and reports it: stale_semantics in causeway status). To bring the
cluster to this build's semantics while the event log still starts at seq 1:

  1. stop every processor (a running leader goes on snapshotting its state);
  2. causeway snapshots prune-stale --yes;
  3. start the processors: each replays the log from the start.

Without --yes it only lists what it would delete. It refuses when the log no
longer starts at seq 1 (the moments only those snapshots reach could not be
rebuilt), and while a processor still runs (its presence row is current),
unless --force. It holds retention's lock while it works, so the persister's
retention waits. The alarm history already written is left as it was.`,
		Args: cobra.NoArgs,
	}
	db := addDBFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		h, err := db.historian(ctx, g)
		if err != nil {
			return err
		}
		defer h.db.Close()
		out := cmd.OutOrStdout()
		// Checked first, and again under retention's lock right before
		// deleting: a processor started meanwhile would restore a stale
		// snapshot about to go, and as leader write more.
		running := func(ctx context.Context) ([]string, error) {
			ps, err := store.Present(ctx, h.db)
			ids := make([]string, len(ps))
			for i, p := range ps {
				ids[i] = p.NodeID
			}
			return ids, err
		}
		ids, err := running(ctx)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			if yes && !force {
				return badInput("processors still run: %s; stop them first (or --force)", strings.Join(ids, ", "))
			}
			fmt.Fprintf(out, "processors still running: %s\n", strings.Join(ids, ", "))
		}
		var stillRunning error
		beforeDelete := func(ctx context.Context) error {
			if force {
				return nil
			}
			ids, err := running(ctx)
			if err == nil && len(ids) > 0 {
				stillRunning = fmt.Errorf("processors started meanwhile: %s; stop them first (or --force)", strings.Join(ids, ", "))
				return stillRunning
			}
			return err
		}
		res, err := h.recon.PruneStale(ctx, h.log, !yes, beforeDelete)
		if len(res.Stale) > 0 {
			if yes {
				fmt.Fprintln(out, "stale snapshots:")
			} else {
				fmt.Fprintln(out, "would delete:")
			}
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
		if errors.Is(err, snapshot.ErrLogNotWhole) || (stillRunning != nil && errors.Is(err, stillRunning)) {
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
	cmd.Flags().BoolVar(&force, "force", false, "delete even while processors run (their state stays stale, and a leader snapshots it again)")
	return cmd
}
