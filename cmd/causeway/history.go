package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/when"
)

// historyOutput writes v as JSON, or a table.
func historyOutput(w io.Writer, format string, v any, table func(tw *tabwriter.Writer)) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// timeRange reads --from/--to (default: the last 24 hours).
func timeRange(from, to string, now time.Time) (time.Time, time.Time, error) {
	var f, t time.Time
	var err error
	if to == "" {
		t = now.UTC()
	} else if t, err = when.Parse(to, now); err != nil {
		return f, t, badInput("--to: %v", err)
	}
	if from == "" {
		f = t.Add(-24 * time.Hour)
	} else if f, err = when.Parse(from, now); err != nil {
		return f, t, badInput("--from: %v", err)
	}
	if t.Before(f) {
		return f, t, badInput("--to %s is before --from %s", t.Format(time.RFC3339Nano), f.Format(time.RFC3339Nano))
	}
	return f, t, nil
}

func newAlarmsHistoryCmd(g *globalFlags) *cobra.Command {
	var from, to, output string
	var q history.Query
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Alarm occurrences active between --from and --to, from the alarm history in the database (no replay)",
		Args:  cobra.NoArgs,
	}
	db := addDBFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return badInput("--output: %q is not table or json", output)
		}
		f, t, err := timeRange(from, to, time.Now())
		if err != nil {
			return err
		}
		if q.After != "" && from == "" && to == "" {
			// A next page is of its first page's window, not the 24
			// hours before a later now (history.PageWindow).
			pf, pt, ok, err := history.PageWindow(q.After)
			if err != nil {
				return badInput("--page: %v", err)
			}
			if ok {
				f, t = pf, pt
			}
		}
		q.From, q.To = f, t
		if q.Limit < 1 || q.Limit > 10000 {
			return badInput("--limit: %d is not in 1..10000", q.Limit)
		}
		conn, err := db.open(cmd.Context(), g)
		if err != nil {
			return err
		}
		defer conn.Close()
		// The head first: the page read after it holds at least what it
		// says is written.
		head, err := history.Head(cmd.Context(), conn)
		if err != nil {
			return err
		}
		p, err := history.List(cmd.Context(), conn, q)
		if errors.Is(err, history.ErrBadToken) {
			return badInput("--page: %v", err)
		}
		if errors.Is(err, history.ErrBadQuery) {
			return badInput("%v", err)
		}
		if err != nil {
			return err
		}
		p.Items = orEmpty(p.Items)
		if output != "json" {
			warnCoverage(cmd.ErrOrStderr(), p.Coverage)
		}
		// JSON names the window it was resolved to, as the API does, so a
		// next page can ask for the same one, and the seq the history is
		// written to: an alarm cleared after it still shows as active.
		out := struct {
			From time.Time `json:"from"`
			To   time.Time `json:"to"`
			Head int64     `json:"history_head"`
			history.Page
		}{f, t, head, p}
		return historyOutput(cmd.OutOrStdout(), output, out, func(tw *tabwriter.Writer) {
			row(tw, "RAISED", "CLEARED", "TYPE", "NAME", "ALARM_ID", "RESOURCE", "SEVERITY", "DEDUCED", "SEVERITY_CHANGES", "RAISED_SEQ", "CLEARED_SEQ")
			lost := false
			for _, o := range p.Items {
				raised, rseq := boundTime(o.RaisedAt, o.RaisedSeq, o.RaisedApprox, o.RaisedAfterSeq)
				cleared, cseq := "active", "-"
				if !o.Active() {
					cleared, cseq = boundTime(o.ClearedAt, o.ClearedSeq, o.ClearedApprox, o.ClearedAfterSeq)
				}
				lost = lost || o.RaisedApprox || o.ClearedApprox
				var changes []string
				for _, c := range o.SeverityChanges {
					at := itoa(c.Seq)
					if c.Approx {
						at = itoa(c.AfterSeq+1) + ".." + at + " (lost range)"
						lost = true
					}
					changes = append(changes, c.From+"->"+c.To+"@"+at)
				}
				res := o.Resource.Type + "/" + o.Resource.ID
				if o.Resource.ID == "" {
					res = "-"
				}
				ch := strings.Join(changes, ",")
				if ch == "" {
					ch = "-"
				}
				row(tw, raised, cleared, o.Type, o.Name, o.AlarmID, res, o.Severity, o.Deduced, ch, rseq, cseq)
			}
			row(tw, "")
			if lost {
				row(tw, "(lost range: the alarm was raised or cleared in seqs whose events were past retention when the history "+
					"was written; it happened in the seqs shown, at or before the time shown)")
			}
			row(tw, fmt.Sprintf("(history written to seq %d)", head))
			if p.Next != "" {
				// The window resolved now (relative times would move), and
				// the same filters.
				hint := "next page: --page " + p.Next + " --from " + f.Format(time.RFC3339Nano) + " --to " + t.Format(time.RFC3339Nano)
				for _, fl := range [][2]string{{"type", q.Type}, {"resource", q.Resource}, {"severity", q.Severity}} {
					if fl[1] != "" {
						hint += " --" + fl[0] + " " + shellQuote(fl[1])
					}
				}
				if q.Limit != 100 {
					hint += " --limit " + strconv.Itoa(q.Limit)
				}
				row(tw, "")
				row(tw, hint)
			}
		})
	}
	cmd.Flags().StringVar(&from, "from", "", "start: RFC 3339, now, or relative (-2h); default 24h before --to")
	cmd.Flags().StringVar(&to, "to", "", "end: RFC 3339, now, or relative; default now")
	cmd.Flags().StringVar(&q.Type, "type", "", "only alarms of this type")
	cmd.Flags().StringVar(&q.Resource, "resource", "", "only alarms on this resource (id, name or key)")
	cmd.Flags().StringVar(&q.Severity, "severity", "", "only alarms that had this severity (e.g. CRITICAL) between --from and --to")
	cmd.Flags().IntVar(&q.Limit, "limit", 100, "occurrences per page")
	cmd.Flags().StringVar(&q.After, "page", "", "page token printed by the previous page (without --from and --to, of its window)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// warnCoverage writes to w a warning line for each way the window is not
// whole: it starts before the history's retention boundary (the alarms
// that ended before the boundary are missing, so the list is not what was
// active then), it overlaps a lost range (what the history says there is
// approximate), or it starts before the oldest event the log retains.
func warnCoverage(w io.Writer, c history.Coverage) {
	if c.Incomplete {
		fmt.Fprintf(w, "warning: incomplete: the window starts before %s, the history's retention boundary: "+
			"alarms and links that ended before it were pruned and are missing; only windows from %s on are complete\n",
			c.CompleteFrom.Format(time.RFC3339Nano), c.CompleteFrom.Format(time.RFC3339Nano))
	}
	for _, l := range c.LostRanges {
		start := "the start of the history"
		if !l.AfterAt.IsZero() {
			start = l.AfterAt.Format(time.RFC3339Nano)
		}
		fmt.Fprintf(w, "warning: approximate: the window overlaps the lost range of seqs %d..%d (recorded from %s, or later, to %s), "+
			"whose events were past retention when the history was written: the history there is the state at seq %d; "+
			"alarms raised and cleared inside it are missing, and those that ended inside it show as active until %s\n",
			l.AfterSeq+1, l.Seq, start, l.At.Format(time.RFC3339Nano), l.Seq, l.At.Format(time.RFC3339Nano))
	}
	if c.LogTruncated {
		fmt.Fprintf(w, "warning: the window starts before %s, the oldest event the log retains: it can no longer be rebuilt from the log (replay, --at)\n",
			c.LogFrom.Format(time.RFC3339Nano))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// boundTime formats when something happened, as the history knows it: at
// seq, at time t (to the sub-second, as the JSON says it and --at takes
// it); or, when approx, in the seqs after afterSeq through seq, at or
// before t (a lost range).
func boundTime(t time.Time, seq int64, approx bool, afterSeq int64) (when, seqs string) {
	if !approx {
		return t.Format(time.RFC3339Nano), itoa(seq)
	}
	return upperBound(t), itoa(afterSeq+1) + ".." + itoa(seq)
}

// upperBound formats t as the bound of a time in a lost range: "<=" and t
// in whole seconds, rounded up so that the bound still holds.
func upperBound(t time.Time) string {
	up := t.Truncate(time.Second)
	if up.Before(t) {
		up = up.Add(time.Second)
	}
	return "<=" + up.Format(time.RFC3339) + " (lost range)"
}

func newAlarmsStatsCmd(g *globalFlags) *cobra.Command {
	var from, to, output string
	var q history.StatsQuery
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Alarms raised per interval, by type and severity, from the alarm history in the database",
		Args:  cobra.NoArgs,
	}
	db := addDBFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return badInput("--output: %q is not table or json", output)
		}
		f, t, err := timeRange(from, to, time.Now())
		if err != nil {
			return err
		}
		if !f.Before(t) {
			return badInput("--from must be before --to")
		}
		q.From, q.To = f, t
		if q.Interval < time.Second {
			return badInput("--interval: %s is shorter than a second", q.Interval)
		}
		if t.Sub(f)/q.Interval > 100000 {
			return badInput("--interval: %s over %s is more than 100000 buckets", q.Interval, t.Sub(f))
		}
		conn, err := db.open(cmd.Context(), g)
		if err != nil {
			return err
		}
		defer conn.Close()
		// The head first, as alarms history reads it.
		head, err := history.Head(cmd.Context(), conn)
		if err != nil {
			return err
		}
		bs, err := history.Stats(cmd.Context(), conn, q)
		if errors.Is(err, history.ErrBadQuery) {
			return badInput("%v", err)
		}
		if err != nil {
			return err
		}
		if bs == nil {
			bs = []history.Bucket{}
		}
		cov, err := history.CoverageOf(cmd.Context(), conn, f, t)
		if err != nil {
			return err
		}
		if output != "json" {
			warnCoverage(cmd.ErrOrStderr(), cov)
		}
		// JSON is the API's document (GET /v1/history/stats) with the
		// head as alarms history has it: a bare array of buckets had no
		// room for the coverage, so a script could not tell a window the
		// history no longer holds whole.
		out := struct {
			From     time.Time        `json:"from"`
			To       time.Time        `json:"to"`
			Interval string           `json:"interval"`
			Head     int64            `json:"history_head"`
			Buckets  []history.Bucket `json:"buckets"`
			history.Coverage
		}{f, t, q.Interval.String(), head, bs, cov}
		return historyOutput(cmd.OutOrStdout(), output, out, func(tw *tabwriter.Writer) {
			row(tw, "INTERVAL_START", "INTERVAL_END", "TYPE", "SEVERITY", "RAISED", "RAISED_IN_LOST_RANGE")
			lost := false
			for _, b := range bs {
				row(tw, b.Start.Format(time.RFC3339Nano), b.End.Format(time.RFC3339Nano), b.Type, b.Severity, b.Raised, b.RaisedApprox)
				lost = lost || b.RaisedApprox > 0
			}
			if lost {
				row(tw, "")
				row(tw, "(raised in lost range: raised in seqs whose events were past retention when the history was written, "+
					"at or before a time in the interval, maybe long before it; not counted in RAISED)")
			}
		})
	}
	cmd.Flags().StringVar(&from, "from", "", "start: RFC 3339, now, or relative (-2h); default 24h before --to")
	cmd.Flags().StringVar(&to, "to", "", "end: RFC 3339, now, or relative; default now")
	cmd.Flags().DurationVar(&q.Interval, "interval", time.Hour, "bucket width")
	cmd.Flags().StringVar(&q.Type, "type", "", "only alarms of this type")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// shellQuote quotes s for a shell command line when it needs it. A value
// with a character that is not printable is quoted as bash's $'...', every
// byte outside printable ASCII written \xHH, so that the hint it is in
// stays one printable cell of the table and bash reads the same bytes
// back whatever its locale (its \u escapes depend on a UTF-8 one).
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=,+", r))
	}) < 0 {
		return s
	}
	if printable(s) != s {
		var b strings.Builder
		b.WriteString("$'")
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\' || c == '\'':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c >= 0x20 && c < 0x7f:
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, "\\x%02x", c)
			}
		}
		b.WriteString("'")
		return b.String()
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
