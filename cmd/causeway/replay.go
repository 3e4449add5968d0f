package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/when"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
)

// exitBadInput is the exit code of a usage error of any command (an
// unknown command or flag, a malformed flag value; see usageErrors), and
// of the historical commands (rca show --at, topology show --at, replay,
// alarms history | stats) for input that cannot be answered (a malformed
// time, a time before retention, an unknown or ambiguous alarm). A
// runtime failure exits 1.
const exitBadInput = 2

func badInput(format string, args ...any) error {
	return &exitError{code: exitBadInput, msg: fmt.Sprintf(format, args...)}
}

// dbFlags name the MariaDB of the event log: --dsn, else the config file's
// database section.
type dbFlags struct {
	dsn string
}

func addDBFlags(cmd *cobra.Command) *dbFlags {
	f := &dbFlags{}
	cmd.Flags().StringVar(&f.dsn, "dsn", "", "MariaDB DSN of the event log (default: database.dsn of --config)")
	return f
}

// liveRefused refuses --dsn on a live query (no --at or --seq), which the
// API answers and the database would not be read for.
func (f *dbFlags) liveRefused(cmd *cobra.Command) error {
	if cmd.Flags().Changed("dsn") {
		return badInput("--dsn reads the past from the database: give --at or --seq (live, the API at --url answers)")
	}
	return nil
}

// apiRefused refuses the API's flags on a query of the past (--at or
// --seq), which reads the database and no processor.
func apiRefused(cmd *cobra.Command) error {
	for _, name := range []string{"url", "token"} {
		if cmd.Flags().Changed(name) {
			return badInput("--%s is for the live API; --at and --seq read the database (--dsn, or the configuration's)", name)
		}
	}
	return nil
}

func (f *dbFlags) open(ctx context.Context, g *globalFlags) (*sql.DB, error) {
	dsn := f.dsn
	if dsn == "" {
		cfg, err := loadConfig(g.configPath, needDatabase)
		if err != nil {
			return nil, fmt.Errorf("no --dsn, and %w", err)
		}
		dsn = cfg.Database.DSN
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// pointFlags are --at and --seq: a moment of the log.
type pointFlags struct {
	at  atFlag
	seq seqFlag
}

// atFlag is --at, which remembers whether it was given: `--at ""` (a
// script's unset variable) is refused, not taken for "live".
type atFlag struct {
	s     string
	given bool
}

func (f *atFlag) String() string { return f.s }
func (f *atFlag) Type() string   { return "string" }
func (f *atFlag) Set(s string) error {
	f.s, f.given = s, true
	return nil
}

// seqFlag is --seq, which remembers whether it was given: `--seq 0` is
// refused, not taken for "live".
type seqFlag struct {
	n     int64
	given bool
}

func (f *seqFlag) String() string { return strconv.FormatInt(f.n, 10) }
func (f *seqFlag) Type() string   { return "int" }
func (f *seqFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("not an integer")
	}
	f.n, f.given = n, true
	return nil
}

func addPointFlags(cmd *cobra.Command, p *pointFlags, what string) {
	cmd.Flags().Var(&p.at, "at", what+" at this time: RFC 3339, now, or relative (-2h)")
	cmd.Flags().Var(&p.seq, "seq", what+" after this seq of the log")
}

func (p pointFlags) set() bool { return p.at.given || p.seq.given }

// check refuses a malformed point before anything is opened.
func (p pointFlags) check() error {
	if p.at.given && p.seq.given {
		return badInput("give --at or --seq, not both")
	}
	if p.seq.given && p.seq.n < 1 {
		return badInput("--seq: %d is not a seq of the log (they start at 1)", p.seq.n)
	}
	if p.at.given {
		if _, err := when.Parse(p.at.s, time.Now()); err != nil {
			return badInput("--at: %v", err)
		}
	}
	return nil
}

// historian reconstructs past states straight from the database: it works
// with every processor down and never touches a live graph.
type historian struct {
	db  *sql.DB
	log *store.Log
	// recon rebuilds the engine (the graph), from a processor's snapshot
	// or an engine-only one; nodes rebuilds the processor's whole state
	// (engine and subscriptions), from a processor's snapshot only.
	recon *snapshot.Reconstructor
	nodes *snapshot.Reconstructor
	snaps *snapshot.Store
	now   func() time.Time
	// progress, when set, is told the seqs applied while replaying.
	progress func(done, total int64)
}

// historian opens the database of the flags and a historian over it;
// the caller closes h.db.
func (f *dbFlags) historian(ctx context.Context, g *globalFlags) (*historian, error) {
	conn, err := f.open(ctx, g)
	if err != nil {
		return nil, err
	}
	h, err := newHistorian(conn, g.logger())
	if err != nil {
		conn.Close()
		return nil, err
	}
	return h, nil
}

func newHistorian(db *sql.DB, logger *slog.Logger) (*historian, error) {
	l := store.NewLog(db, nil)
	norm := graph.DefaultNormalizer()
	r, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{},
		snapshot.ReconstructDeps{DB: db, Events: l, Factory: snapshot.EngineFactory{Normalizer: norm}, Logger: logger})
	if err != nil {
		return nil, err
	}
	nodes, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{},
		snapshot.ReconstructDeps{DB: db, Events: l, Factory: snapshot.NodeFactory{Normalizer: norm}, Logger: logger})
	if err != nil {
		return nil, err
	}
	return &historian{db: db, log: l, recon: r, nodes: nodes, snaps: snapshot.NewStore(db, logger), now: time.Now}, nil
}

// point is a reconstructed moment.
type point struct {
	engine *evaluator.Engine
	rec    snapshot.Reconstruction
	// label is how the user named it (for errors).
	label string
	// asked is the moment: --at's time, or the recorded time of --seq's.
	asked time.Time
}

// resolve turns --at/--seq into a seq of the log, with clear errors for a
// moment the log cannot answer, and the time --at names (zero for --seq).
func (h *historian) resolve(ctx context.Context, p pointFlags) (int64, string, time.Time, error) {
	if err := p.check(); err != nil {
		return 0, "", time.Time{}, err
	}
	head, headAt, err := h.log.Head(ctx)
	if err != nil {
		return 0, "", time.Time{}, err
	}
	first, err := h.log.First(ctx)
	if err != nil {
		return 0, "", time.Time{}, err
	}
	if first == 0 && head > 0 {
		// Retention dropped every event: the next one to be stored is
		// the first the log will hold.
		first = head + 1
	}
	if seq := p.seq.n; p.seq.given {
		label := fmt.Sprintf("seq %d", seq)
		if seq > head {
			return 0, "", time.Time{}, badInput("%s is beyond the end of the log (head seq %d)", label, head)
		}
		return seq, label, time.Time{}, h.retained(ctx, seq, first, label)
	}
	t, err := when.Parse(p.at.s, h.now())
	if err != nil {
		return 0, "", time.Time{}, badInput("--at: %v", err)
	}
	label := t.Format(time.RFC3339Nano)
	seq, err := h.log.SeqAt(ctx, t)
	if errors.Is(err, store.ErrTruncated) {
		return 0, "", time.Time{}, h.beforeRetained(ctx, label, first, head, "")
	}
	if err != nil {
		return 0, "", time.Time{}, err
	}
	if seq == 0 {
		if head == 0 {
			return 0, "", time.Time{}, badInput("the event log is empty")
		}
		return 0, "", time.Time{}, badInput("%s is before the first event of the log", label)
	}
	if t.After(headAt) && t.After(h.now()) {
		return 0, "", time.Time{}, badInput("%s is in the future", label)
	}
	return seq, label, t, h.retained(ctx, seq, first, label)
}

// retained checks that seq can be rebuilt: a snapshot at or before it
// that is at seq itself, or after which every event up to seq is still
// stored (first is the oldest stored seq, head+1 when none is).
func (h *historian) retained(ctx context.Context, seq, first int64, label string) error {
	if first <= 1 {
		return nil
	}
	metas, err := h.snaps.List(ctx, seq)
	if err != nil {
		return fmt.Errorf("%s: list snapshots: %w", label, err)
	}
	for _, m := range metas {
		if m.Seq >= first-1 || m.Seq == seq {
			return nil
		}
	}
	head, _, err := h.log.Head(ctx)
	if err != nil {
		return err
	}
	return h.beforeRetained(ctx, label, first, head, fmt.Sprintf(", no snapshot from which to rebuild seq %d", seq))
}

// beforeRetained is the refusal (bad input) of a moment, named label,
// that the log no longer rebuilds: which events it still stores (first,
// the oldest stored seq, head+1 when retention dropped every one), and
// the earliest moment it does rebuild, as --at takes it, so that the
// asker need not guess one.
func (h *historian) beforeRetained(ctx context.Context, label string, first, head int64, why string) error {
	stored := fmt.Sprintf("every event up to the head, seq %d, is past retention", head)
	if first <= head {
		stored = fmt.Sprintf("oldest stored event: seq %d", first)
		if _, at, err := h.log.Oldest(ctx); err == nil && !at.IsZero() {
			stored += ", recorded at " + at.UTC().Format(time.RFC3339Nano)
		}
	}
	earliest := "no moment of it can be rebuilt: no snapshot is kept at or after the seq before the oldest stored event"
	if at, ok, err := h.earliest(ctx, first); err != nil {
		return fmt.Errorf("%s is before the retained log (%s%s); find the earliest moment rebuilt: %w", label, stored, why, err)
	} else if ok {
		earliest = "the earliest moment it rebuilds: --at " + at.UTC().Format(time.RFC3339Nano)
	}
	return badInput("%s is before the retained log (%s%s); %s", label, stored, why, earliest)
}

// earliest is the first moment the retained log rebuilds by time: that of
// the oldest snapshot it follows (at or after the seq before first, the
// oldest stored seq; retention keeps one right there), or ok=false when
// no snapshot is.
func (h *historian) earliest(ctx context.Context, first int64) (time.Time, bool, error) {
	metas, err := h.snaps.List(ctx, math.MaxInt64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("list snapshots: %w", err)
	}
	var at time.Time
	ok := false
	for _, m := range metas { // newest first
		if m.Seq >= first-1 {
			at, ok = m.RecordedAt, true
		}
	}
	return at, ok, nil
}

// replayStep is the events applied between two progress reports.
const replayStep = 5000

// at rebuilds the state at p on a fresh engine: the newest usable snapshot
// at or before it, then the events after it.
func (h *historian) at(ctx context.Context, p pointFlags) (point, error) {
	rec, label, asked, err := h.rebuild(ctx, p, h.recon)
	if err != nil {
		return point{}, err
	}
	e, ok := rec.Machine.(*evaluator.Engine)
	if !ok {
		return point{}, fmt.Errorf("reconstructed a %T, not an evaluator engine", rec.Machine)
	}
	if asked.IsZero() {
		asked = rec.RecordedAt
	}
	return point{engine: e, rec: rec, label: label, asked: asked}, nil
}

// node rebuilds the processor's whole state at p (engine and
// subscriptions), whose canonical dump is what a processor's
// GET /v1/debug/dump answers at that seq. Engine-only snapshots (an
// earlier release's) lack the subscriptions: it replays from an older
// processor snapshot or the start of the log instead, and says so when
// retention left neither.
func (h *historian) node(ctx context.Context, p pointFlags) (*snapshot.Node, error) {
	rec, label, _, err := h.rebuild(ctx, p, h.nodes)
	var bad *exitError
	if errors.As(err, &bad) && bad.code == exitBadInput && rec.Seq > 0 {
		if h.engineOnlyBase(ctx, rec.Seq) {
			return nil, badInput("%s: its subscriptions cannot be rebuilt: the snapshots the retained log follows are engine-only "+
				"(an earlier release's), and the events before them are past retention; --format summary or dot rebuild the graph alone (%v)",
				label, err)
		}
	}
	if err != nil {
		return nil, err
	}
	n, ok := rec.Machine.(*snapshot.Node)
	if !ok {
		return nil, fmt.Errorf("reconstructed a %T, not a processor's state", rec.Machine)
	}
	return n, nil
}

// engineOnlyBase reports whether an engine-only snapshot at or before seq
// is one the retained log follows: the engine can be rebuilt from it, the
// processor's state not.
func (h *historian) engineOnlyBase(ctx context.Context, seq int64) bool {
	first, err := h.log.First(ctx)
	if err != nil {
		return false
	}
	metas, err := h.snaps.List(ctx, seq)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(metas, func(m snapshot.Meta) bool {
		return m.Seq >= first-1 && !slices.Contains(snapshot.NodeEncodings(), m.Encoding)
	})
}

// rebuild resolves p and rebuilds the state at it with r: the newest
// snapshot r can use at or before it, then the events after it. The
// returned reconstruction's Seq is the seq resolved, also on error; asked
// is the time --at names (zero for --seq).
func (h *historian) rebuild(ctx context.Context, p pointFlags, r *snapshot.Reconstructor) (snapshot.Reconstruction, string, time.Time, error) {
	seq, label, asked, err := h.resolve(ctx, p)
	if err != nil {
		return snapshot.Reconstruction{}, "", time.Time{}, err
	}
	start := int64(0)
	if metas, err := h.snaps.List(ctx, seq); err == nil && len(metas) > 0 {
		start = metas[0].Seq
		for _, m := range metas {
			start = max(start, m.Seq)
		}
	}
	if h.progress == nil {
		start = seq
	}
	rec, err := r.Reconstruct(ctx, snapshot.AtSeq(start))
	for err == nil && rec.Seq < seq {
		if h.progress != nil {
			h.progress(rec.Seq, seq)
		}
		err = r.Advance(ctx, &rec, snapshot.AtSeq(min(seq, rec.Seq+replayStep)))
	}
	if h.progress != nil && err == nil {
		h.progress(rec.Seq, seq)
	}
	if errors.Is(err, snapshot.ErrGap) || errors.Is(err, store.ErrTruncated) {
		return snapshot.Reconstruction{Seq: seq}, label, asked, badInput("%s cannot be rebuilt: %v", label, err)
	}
	if err != nil {
		return snapshot.Reconstruction{Seq: seq}, label, asked, err
	}
	return rec, label, asked, nil
}

// resolveAlarm finds the alarm the user names: a vitrage id ("vitrage:N",
// or a number that is no alarm's external id), an external id, or a name
// (with resource, its external id, name or vitrage id) of an alarm active
// at that moment. A number that is both a vitrage id and an external id is
// ambiguous.
func resolveAlarm(g *graph.Graph, arg, resource, when string) (graph.VertexID, error) {
	if rest, ok := strings.CutPrefix(arg, "vitrage:"); ok {
		n, err := strconv.ParseInt(rest, 10, 64)
		if v, found := g.Vertex(graph.VertexID(n)); err == nil && found && v.Category == graph.CategoryAlarm {
			return v.ID, nil
		}
		return 0, badInput("no alarm has vitrage id %q at %s", rest, when)
	}
	all := g.Alarms("", true, true)
	onResource := func(v graph.Vertex) bool {
		if resource == "" {
			return true
		}
		r, ok := g.AlarmResource(v.ID)
		return ok && (r.ExternalID == resource || r.Name == resource || strconv.FormatInt(int64(r.ID), 10) == resource)
	}
	if n, err := strconv.ParseInt(arg, 10, 64); err == nil {
		if v, ok := g.Vertex(graph.VertexID(n)); ok && v.Category == graph.CategoryAlarm {
			var both []graph.Vertex
			for _, a := range all {
				if (a.ID == v.ID || a.ExternalID == arg) && onResource(a) {
					both = append(both, a)
				}
			}
			switch {
			case len(both) == 1:
				return both[0].ID, nil
			case len(both) > 1:
				return 0, ambiguous(g, arg, when, both)
			}
		}
	}
	var byID []graph.Vertex
	for _, v := range all {
		if v.ExternalID == arg && onResource(v) {
			byID = append(byID, v)
		}
	}
	if len(byID) == 1 {
		return byID[0].ID, nil
	}
	if len(byID) > 1 {
		return 0, ambiguous(g, arg, when, byID)
	}
	var active, cleared []graph.Vertex
	for _, v := range all {
		if v.Name != arg || !onResource(v) {
			continue
		}
		if v.IsDeleted {
			cleared = append(cleared, v)
		} else {
			active = append(active, v)
		}
	}
	on := ""
	if resource != "" {
		on = " on resource " + resource
	}
	switch {
	case len(active) == 1:
		return active[0].ID, nil
	case len(active) > 1:
		return 0, ambiguous(g, arg, when, active)
	case len(cleared) > 0:
		return 0, badInput("no alarm %q%s was active at %s (%d cleared before: name one by its vitrage id: %s)",
			arg, on, when, len(cleared), idList(cleared))
	}
	return 0, badInput("unknown alarm %q%s at %s (give a vitrage id, an alarm id, or a name with --resource)", arg, on, when)
}

func idList(vs []graph.Vertex) string {
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = strconv.FormatInt(int64(v.ID), 10)
	}
	return strings.Join(ids, ", ")
}

func ambiguous(g *graph.Graph, arg, when string, vs []graph.Vertex) error {
	var cands []string
	for _, v := range vs {
		c := fmt.Sprintf("%d (%s %s", v.ID, v.Type, v.ExternalID)
		if r, ok := g.AlarmResource(v.ID); ok {
			c += fmt.Sprintf(" on %s %s", r.Type, r.ExternalID)
		}
		cands = append(cands, c+")")
	}
	return badInput("alarm %q is ambiguous at %s: %d alarms match: %s; give vitrage:ID or --resource", arg, when, len(vs), strings.Join(cands, "; "))
}

// rcaAlarm is one alarm of a historical RCA, with its resource and, from
// the alarm history when it is written, its raised and cleared times.
type rcaAlarm struct {
	VitrageID int64      `json:"vitrage_id"`
	Key       string     `json:"key"`
	Type      string     `json:"type"`
	Name      string     `json:"name"`
	Severity  string     `json:"severity"`
	Cleared   bool       `json:"cleared"`
	Resource  string     `json:"resource,omitempty"`
	RaisedSeq int64      `json:"raised_seq,omitempty"`
	RaisedAt  *time.Time `json:"raised_at,omitempty"`
	// ClearedAt is the history's clearing time, else (cleared alarms
	// without history) the alarm's last update in the graph.
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
	// RaisedApprox and ClearedApprox say the history has the time only
	// as a bound, at or before which it happened: the raise or the clear
	// fell in seqs past retention when the history was written.
	RaisedApprox  bool `json:"raised_approx,omitempty"`
	ClearedApprox bool `json:"cleared_approx,omitempty"`
	Root          bool `json:"root_cause"`
}

// historicalRCA is the answer of `rca show --at`: the API's RCA document
// (api.RCAResponse, historical, with no leader or node) plus the snapshot
// the graph was rebuilt from, the alarm asked about, and what the alarm
// history says of each alarm.
type historicalRCA struct {
	api.RCAResponse
	SnapshotSeq int64      `json:"snapshot_seq"`
	Alarm       int64      `json:"alarm"`
	Alarms      []rcaAlarm `json:"alarms"`
	// HistoryHead, when set, is the seq the alarm history is written to,
	// before the one asked: the alarms' raised times are left out.
	HistoryHead *int64 `json:"history_head,omitempty"`
	// CompleteFrom and Incomplete are the history's coverage of the
	// moment, as alarms history has them (history.Coverage): before the
	// boundary retention pruned the history at, the alarms that ended
	// before it have no raised or cleared times here. The causes, rebuilt
	// from the log, are whole.
	CompleteFrom time.Time `json:"complete_from,omitzero"`
	Incomplete   bool      `json:"incomplete,omitempty"`
	dot          func(io.Writer) error
}

func buildRCA(ctx context.Context, h *historian, p point, alarm graph.VertexID) (*historicalRCA, error) {
	g := p.engine.Graph()
	r, err := g.RCA(alarm)
	if err != nil {
		return nil, fmt.Errorf("rca of %d: %w", alarm, err)
	}
	out := &historicalRCA{SnapshotSeq: p.rec.SnapshotSeq, Alarm: int64(alarm)}
	out.Meta = api.Meta{Seq: p.rec.Seq}
	out.Historical, out.RecordedAt, out.StaleSemantics = true, p.rec.RecordedAt.UTC(), p.rec.StaleSemantics
	if !api.ComputeRCA(g, alarm, &out.RCAResponse) {
		return nil, fmt.Errorf("rca of %d: not in the graph at seq %d", alarm, p.rec.Seq)
	}
	keys := make([]string, 0, len(r.Alarms))
	for _, id := range r.Alarms {
		v, _ := g.Vertex(id)
		keys = append(keys, v.Key())
	}
	// The history is optional: a database whose leader does not write it
	// (or an older one) still answers, without raised times. Nor are they
	// taken from a history not written up to seq yet (its leader down or
	// failing): an alarm cleared and raised again after its head would
	// show the earlier occurrence's.
	var occ map[string]history.Occurrence
	if head, err := history.Head(ctx, h.db); err == nil && head < p.rec.Seq {
		out.HistoryHead = &head
	} else if err == nil {
		if occ, err = history.At(ctx, h.db, keys, p.rec.Seq); err != nil {
			occ = nil
		}
		// After the rows it qualifies, as CoverageOf asks.
		if cov, err := history.CoverageOf(ctx, h.db, p.asked, p.asked); err == nil {
			out.CompleteFrom, out.Incomplete = cov.CompleteFrom, cov.Incomplete
		}
	}
	roots := map[graph.VertexID]bool{}
	for _, id := range r.Roots {
		roots[id] = true
	}
	for _, id := range r.Alarms {
		v, _ := g.Vertex(id)
		a := rcaAlarm{VitrageID: int64(id), Key: v.Key(), Type: v.Type, Name: v.Name, Severity: v.OperationalState,
			Cleared: v.IsDeleted, Root: roots[id]}
		if a.Severity == "" {
			a.Severity = v.Severity
		}
		if res, ok := g.AlarmResource(id); ok {
			a.Resource = res.Type + "/" + res.ExternalID
		}
		// An occurrence that disagrees with the graph (closed while the
		// alarm is raised at seq, or open while it is cleared) is not
		// this one's: left out rather than shown as it.
		if o, ok := occ[a.Key]; ok && o.Active() != !v.IsDeleted {
			delete(occ, a.Key)
		}
		if o, ok := occ[a.Key]; ok {
			at := o.RaisedAt
			a.RaisedSeq, a.RaisedAt, a.RaisedApprox = o.RaisedSeq, &at, o.RaisedApprox
			if !o.Active() {
				c := o.ClearedAt
				a.ClearedAt, a.ClearedApprox = &c, o.ClearedApprox
			}
		}
		if a.ClearedAt == nil && v.IsDeleted {
			c := v.UpdateTimestamp.UTC()
			a.ClearedAt = &c
		}
		out.Alarms = append(out.Alarms, a)
	}
	out.dot = func(w io.Writer) error { return g.WriteRCADOT(w, r) }
	return out, nil
}

// fmtOptTime formats t to the sub-second (as the JSON, so that it can be
// given back as --at), "-" when nil; approx marks it as a bound (a lost
// range of the history).
func fmtOptTime(t *time.Time, approx bool) string {
	if t == nil {
		return "-"
	}
	if approx {
		return upperBound(*t)
	}
	return t.Format(time.RFC3339Nano)
}

func (a *historicalRCA) write(w io.Writer, format string) error {
	switch format {
	case "json":
		return api.WriteJSON(w, a)
	case "dot":
		return a.dot(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "seq", a.Seq)
	row(tw, "recorded_at", a.RecordedAt.Format(time.RFC3339Nano))
	row(tw, "alarm", a.Alarm)
	if a.StaleSemantics {
		row(tw, "stale semantics", "from a snapshot of a build with other semantics")
	}
	if a.HistoryHead != nil {
		row(tw, "history", fmt.Sprintf("written to seq %d only: raised times left out", *a.HistoryHead))
	}
	var roots []string
	for _, x := range a.Alarms {
		if x.Root {
			roots = append(roots, strconv.FormatInt(x.VitrageID, 10))
		}
	}
	row(tw, "root causes", strings.Join(roots, ", "))
	for _, p := range a.Paths {
		row(tw, "path", strings.Join(p, " -> "))
	}
	if a.PathsTruncated {
		row(tw, "paths", fmt.Sprintf("the first %d shortest paths only; there are more", len(a.Paths)))
	}
	fmt.Fprintln(tw)
	row(tw, "VITRAGE_ID", "TYPE", "NAME", "RESOURCE", "SEVERITY", "RAISED", "CLEARED", "ROOT")
	for _, x := range a.Alarms {
		cleared := fmtOptTime(x.ClearedAt, x.ClearedApprox)
		if !x.Cleared && x.ClearedAt == nil {
			cleared = "active"
		}
		row(tw, x.VitrageID, x.Type, x.Name, x.Resource, x.Severity, fmtOptTime(x.RaisedAt, x.RaisedApprox), cleared, x.Root)
	}
	return tw.Flush()
}

func checkFormat(format string, allowed ...string) error {
	return checkChoice("output", format, allowed...)
}

// checkChoice refuses a value of the flag --name that is not one of
// allowed.
func checkChoice(name, value string, allowed ...string) error {
	if !slices.Contains(allowed, value) {
		return badInput("--%s: %q is not one of %s", name, value, strings.Join(allowed, ", "))
	}
	return nil
}

// runHistoricalRCA answers `rca show ALARM --at|--seq` from the database.
func runHistoricalRCA(cmd *cobra.Command, g *globalFlags, db *dbFlags, p pointFlags, alarm, resource, format string) error {
	if err := checkFormat(format, "table", "json", "dot"); err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	ctx := cmd.Context()
	h, err := db.historian(ctx, g)
	if err != nil {
		return err
	}
	defer h.db.Close()
	pt, err := h.at(ctx, p)
	if err != nil {
		return err
	}
	id, err := resolveAlarm(pt.engine.Graph(), alarm, resource, pt.label)
	if err != nil {
		return err
	}
	a, err := buildRCA(ctx, h, pt, id)
	if err != nil {
		return err
	}
	if a.Incomplete && format != "json" {
		// The JSON says it in its fields, as alarms history's does.
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: incomplete: %s is before %s, the history's retention boundary: "+
			"the alarms that ended before it were pruned from the history, and their raised and cleared times are missing "+
			"(the causes are rebuilt from the log and whole)\n", pt.asked.UTC().Format(time.RFC3339Nano), a.CompleteFrom.Format(time.RFC3339Nano))
	}
	return a.write(cmd.OutOrStdout(), format)
}

// historicalTopology is the answer of `topology show --at`: the API's
// topology document (api.TopologyResponse, with no leader or node) of the
// reconstructed graph, and the moment it was rebuilt at.
type historicalTopology struct {
	api.TopologyResponse
	Historical     bool      `json:"historical"`
	RecordedAt     time.Time `json:"recorded_at,omitzero"`
	StaleSemantics bool      `json:"stale_semantics,omitempty"`
	SnapshotSeq    int64     `json:"snapshot_seq"`
}

// runHistoricalTopology answers `topology show --at|--seq` from the
// database, with api.ComputeTopology as the API answers live.
func runHistoricalTopology(cmd *cobra.Command, g *globalFlags, db *dbFlags, p pointFlags, q api.TopologyQuery, format string) error {
	if err := checkFormat(format, "table", "json", "dot"); err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	ctx := cmd.Context()
	h, err := db.historian(ctx, g)
	if err != nil {
		return err
	}
	defer h.db.Close()
	pt, err := h.at(ctx, p)
	if err != nil {
		return err
	}
	out := historicalTopology{Historical: true, RecordedAt: pt.rec.RecordedAt.UTC(), StaleSemantics: pt.rec.StaleSemantics, SnapshotSeq: pt.rec.SnapshotSeq}
	out.Meta = api.Meta{Seq: pt.rec.Seq}
	if err := api.ComputeTopology(pt.engine.Graph(), q, &out.TopologyResponse); err != nil {
		return badInput("topology at %s: %v", pt.label, err)
	}
	w := cmd.OutOrStdout()
	switch format {
	case "json":
		return api.WriteJSON(w, out)
	case "dot":
		return writeTopologyDOT(w, out.TopologyResponse)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	writeTopologyTable(tw, out.TopologyResponse)
	if err := tw.Flush(); err != nil {
		return err
	}
	stale := ""
	if out.StaleSemantics {
		stale = "; from a snapshot of a build with other semantics"
	}
	_, err = fmt.Fprintf(w, "\n(seq %d, recorded at %s; rebuilt from the database%s)\n", out.Seq, out.RecordedAt.Format(time.RFC3339Nano), stale)
	return err
}

// summary is replay's topology summary.
type summary struct {
	Seq         int64          `json:"seq"`
	RecordedAt  time.Time      `json:"recorded_at"`
	SnapshotSeq int64          `json:"snapshot_seq"`
	Replayed    int64          `json:"replayed"`
	Refused     int64          `json:"refused"`
	Vertices    map[string]int `json:"vertices"`
	Deleted     int            `json:"deleted_vertices"`
	Edges       int            `json:"edges"`
	Alarms      map[string]int `json:"active_alarms_by_severity"`
	Types       map[string]int `json:"vertices_by_type"`
	// StaleSemantics: the snapshot was computed by a build with other
	// semantics.
	StaleSemantics bool `json:"stale_semantics,omitempty"`
}

func summarise(p point) summary {
	g := p.engine.Graph()
	s := summary{Seq: p.rec.Seq, RecordedAt: p.rec.RecordedAt.UTC(), SnapshotSeq: p.rec.SnapshotSeq, Replayed: p.rec.Replayed,
		Refused: p.rec.ApplyErrors, StaleSemantics: p.rec.StaleSemantics, Vertices: map[string]int{}, Alarms: map[string]int{}, Types: map[string]int{}}
	for _, id := range g.VertexIDs() {
		v, _ := g.Vertex(id)
		if v.IsDeleted {
			s.Deleted++
			continue
		}
		s.Vertices[v.Category]++
		s.Types[v.Type]++
		if v.Category == graph.CategoryAlarm {
			s.Alarms[v.OperationalState]++
		}
		for _, e := range g.Out(id) {
			if !e.IsDeleted {
				s.Edges++
			}
		}
	}
	return s
}

func (s summary) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "seq", s.Seq)
	row(tw, "recorded_at", s.RecordedAt.Format(time.RFC3339Nano))
	row(tw, "from snapshot at seq", s.SnapshotSeq)
	row(tw, "events replayed", s.Replayed)
	row(tw, "events refused", s.Refused)
	if s.StaleSemantics {
		row(tw, "stale semantics", "from a snapshot of a build with other semantics")
	}
	row(tw, "live edges", s.Edges)
	row(tw, "deleted vertices", s.Deleted)
	for _, m := range []struct {
		title string
		m     map[string]int
	}{{"vertices", s.Vertices}, {"type", s.Types}, {"active alarms", s.Alarms}} {
		keys := make([]string, 0, len(m.m))
		for k := range m.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			row(tw, m.title+" "+k, m.m[k])
		}
	}
	return tw.Flush()
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws on a terminal; elsewhere it stays quiet.
func progressBar(w io.Writer, what string) func(done, total int64) {
	last := time.Time{}
	return func(done, total int64) {
		if total <= 0 || (time.Since(last) < 100*time.Millisecond && done < total) {
			return
		}
		last = time.Now()
		const width = 40
		frac := math.Min(1, float64(done)/float64(total))
		n := int(frac * width)
		fmt.Fprintf(w, "\r%s [%s%s] %d/%d", what, strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total)
		if done >= total {
			fmt.Fprintln(w)
		}
	}
}

type replayOptions struct {
	db        *dbFlags
	point     pointFlags
	from      string
	format    string
	output    string
	republish republishOptions
	progress  string
}

func newReplayCmd(g *globalFlags) *cobra.Command {
	o := &replayOptions{}
	cmd := &cobra.Command{
		Use:   "replay --at TIME|--seq N",
		Short: "Rebuild the graph of a past moment from the database; optionally re-publish the events up to it onto another broker vhost",
		Long: `replay rebuilds the state at --at (or --seq) on a separate graph instance, straight
from MariaDB (the newest snapshot at or before it, then the events after it), and
writes it out: --format dump (the canonical dump of the processor's state, engine
and webhook subscriptions: the byte-for-byte form that two equal states share,
which a processor's GET /v1/debug/dump answers at that seq), dot (Graphviz), or
summary (counts; -o json for JSON).

With --republish-url, the events of (--from, --at] are re-published in log order
onto that broker URL's vhost, as the drivers published them (same event ids, so a
persister there stores each once), so that a separate Causeway instance can be
brought up at that moment without touching the live one. Each event carries its
record's recorded_at (header x-causeway-recorded-at): a persister there with
keep_recorded_at: true stores it, and that instance's graph then equals
'replay --at' here, timestamps included. --republish-exchange
names another exchange instead of causeway.events (declared as a durable topic
exchange; it may be on the live broker): bind your own queue or exchange to it
first, since an event nothing takes is reported as unroutable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReplay(cmd, g, o) },
	}
	o.db = addDBFlags(cmd)
	addPointFlags(cmd, &o.point, "rebuild the graph")
	cmd.Flags().StringVar(&o.from, "from", "", "with --republish-url: re-publish the events after this time (default: from the start of the log)")
	cmd.Flags().StringVar(&o.format, "format", "dump", "dump (canonical JSON), dot, or summary")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "summary as table or json (dump is JSON; dot has no JSON form)")
	cmd.Flags().StringVar(&o.progress, "progress", "auto", "progress bar on stderr: auto (on a terminal), always, never")
	addRepublishFlags(cmd, &o.republish)
	return cmd
}

func runReplay(cmd *cobra.Command, g *globalFlags, o *replayOptions) error {
	if !o.point.set() {
		return badInput("replay needs --at or --seq")
	}
	if err := o.point.check(); err != nil {
		return err
	}
	if o.from != "" && o.republish.url == "" {
		return badInput("--from applies to --republish-url only (the graph at --at always starts from the beginning of the log)")
	}
	if o.republish.withoutConfig && o.republish.url == "" {
		return badInput("--republish-without-config applies to --republish-url only")
	}
	if err := checkChoice("format", o.format, "dump", "dot", "summary"); err != nil {
		return err
	}
	if o.output != "table" && o.output != "json" {
		return badInput("--output: %q is not table or json", o.output)
	}
	// The dump is JSON and a summary has a JSON form; DOT has none.
	if o.output == "json" && o.format == "dot" && o.republish.url == "" {
		return badInput("--output json: --format dot is Graphviz text, not JSON (--format dump or summary)")
	}
	showProgress := false
	switch o.progress {
	case "auto":
		showProgress = isTerminal(os.Stderr)
	case "always":
		showProgress = true
	case "never":
	default:
		return badInput("--progress: %q is not auto, always or never", o.progress)
	}
	ctx := cmd.Context()
	h, err := o.db.historian(ctx, g)
	if err != nil {
		return err
	}
	defer h.db.Close()
	if showProgress {
		h.progress = progressBar(cmd.ErrOrStderr(), "replay")
	}
	if o.republish.url != "" {
		return republish(cmd, g, h, o, showProgress)
	}
	w := cmd.OutOrStdout()
	if o.format == "dump" {
		n, err := h.node(ctx, o.point)
		if err != nil {
			return err
		}
		return n.Dump(w)
	}
	pt, err := h.at(ctx, o.point)
	if err != nil {
		return err
	}
	switch o.format {
	case "dot":
		// Everything: every category, deleted vertices and edges too.
		var r api.TopologyResponse
		if err := api.ComputeTopology(pt.engine.Graph(), api.TopologyQuery{Category: "all", All: true}, &r); err != nil {
			return err
		}
		return writeTopologyDOT(w, r)
	case "summary":
		s := summarise(pt)
		if o.output == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		}
		return s.writeTable(w)
	}
	return nil
}

type republishOptions struct {
	url      string
	exchange string
	spool    string
	batch    int
	// withoutConfig re-publishes onto the live exchange even when the
	// configuration cannot tell the live buses (liveBusRefused).
	withoutConfig bool
	// spoolMaxEvents bounds the spool (0: the bus's default); tests
	// scale it down.
	spoolMaxEvents int
}

func addRepublishFlags(cmd *cobra.Command, r *republishOptions) {
	cmd.Flags().StringVar(&r.url, "republish-url", "", "re-publish the events up to --at onto this AMQP URL (another vhost; never the live one)")
	cmd.Flags().StringVar(&r.exchange, "republish-exchange", bus.EventsExchange, "exchange to re-publish onto (another name may be on the live broker; bind something to it first)")
	cmd.Flags().StringVar(&r.spool, "republish-spool", "", "spool file of the re-publisher (default: a temporary file)")
	cmd.Flags().IntVar(&r.batch, "republish-batch", 500, "events spooled per fsync")
	cmd.Flags().BoolVar(&r.withoutConfig, "republish-without-config", false, "re-publish onto "+bus.EventsExchange+" even when --config cannot be loaded (or names no bus) to check that --republish-url is not a live bus")
}

// republishResult is what `replay --republish-url` reports on stdout.
type republishResult struct {
	FromSeq   int64 `json:"from_seq"`
	ToSeq     int64 `json:"to_seq"`
	Published int64 `json:"published"`
}

func republish(cmd *cobra.Command, g *globalFlags, h *historian, o *replayOptions, showProgress bool) error {
	ctx := cmd.Context()
	if o.republish.batch < 1 {
		return badInput("--republish-batch: %d is not positive", o.republish.batch)
	}
	if o.republish.exchange == "" {
		return badInput("--republish-exchange: empty")
	}
	if err := (bus.PublisherConfig{Conn: bus.Conn{URL: o.republish.url}, SpoolPath: "-", Exchange: o.republish.exchange}).Validate(); err != nil {
		return badInput("--republish-url/--republish-exchange: %v", err)
	}
	if o.republish.exchange == bus.EventsExchange {
		if err := liveBusRefused(g.configPath, o.republish); err != nil {
			return err
		}
	}
	if err := dialOnce(o.republish.url); err != nil {
		return err
	}
	to, label, _, err := h.resolve(ctx, o.point)
	if err != nil {
		return err
	}
	var from int64
	if o.from != "" {
		t, err := when.Parse(o.from, h.now())
		if err != nil {
			return badInput("--from: %v", err)
		}
		if from, err = h.log.SeqAt(ctx, t); errors.Is(err, store.ErrTruncated) {
			return badInput("--from %s is before the retained log", t.Format(time.RFC3339Nano))
		} else if err != nil {
			return err
		}
		if from > to {
			return badInput("--from %s is after the moment replayed to, %s", t.Format(time.RFC3339Nano), label)
		}
	}
	if first, err := h.log.First(ctx); err != nil {
		return err
	} else if first > from+1 {
		return badInput("the events after seq %d are no longer all stored (oldest: seq %d); give a later --from", from, first)
	}
	res, err := republishRange(ctx, g.logger(), h.log, o.republish, from, to, showProgressBar(cmd, showProgress))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	return enc.Encode(res)
}

// liveBusRefused refuses to re-publish onto a live bus of the
// configuration at path: bus.url, and the processors' and the notifier's
// own when they set one. A configuration that cannot be loaded, or that
// names no bus, cannot tell the live bus from another: that is refused
// too, unless r.withoutConfig says the operator knows the URL is not a
// live one. It never waives the check of a configuration that names a bus.
func liveBusRefused(path string, r republishOptions) error {
	cfg, err := loadConfig(path, 0)
	if err != nil {
		if r.withoutConfig {
			return nil
		}
		return badInput("--republish-url: cannot tell whether it is a live bus: %v (give --config the live configuration, or --republish-without-config to re-publish unchecked)", err)
	}
	buses := []string{cfg.Bus.URL, cfg.Processor.AMQPURL, cfg.Notifier.AMQPURL}
	if !slices.ContainsFunc(buses, func(u string) bool { return u != "" }) {
		if r.withoutConfig {
			return nil
		}
		return badInput("--republish-url: cannot tell whether it is a live bus: config %s names none (bus.url, processor.amqp_url, notifier.amqp_url); give --config the live configuration, or --republish-without-config to re-publish unchecked", path)
	}
	for _, live := range buses {
		if sameBroker(live, r.url) {
			return badInput("--republish-url is a live bus of %s: re-publish onto another vhost or another --republish-exchange", path)
		}
	}
	return nil
}

// dialOnce connects to the broker of u and closes the connection: the
// publisher retries a connection for ever, as a daemon's must, so a
// broker that refuses it (no such vhost, a wrong password) or cannot be
// reached would leave the command waiting until the operator gives up.
// amqp.Dial bounds the connection and its handshake (30s).
func dialOnce(u string) error {
	conn, err := amqp.Dial(u)
	if err != nil {
		return fmt.Errorf("republish: connect to %s: %w", redacted(u), err)
	}
	return conn.Close()
}

// redacted is an AMQP URL without its password.
func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable url>"
	}
	return u.Redacted()
}

func showProgressBar(cmd *cobra.Command, on bool) func(done, total int64) {
	if !on {
		return nil
	}
	return progressBar(cmd.ErrOrStderr(), "republish")
}

// sameBroker reports whether two AMQP URLs may name the same vhost of the
// same broker, so that re-publishing onto b would feed the live stack of a.
// It errs on the side of "same": hosts are the same when they are equal
// ignoring case or resolve to a common address (localhost and 127.0.0.1),
// ports count only between two URLs of one scheme (a broker's TLS listener
// is the same broker), and the vhost is compared decoded ("" and "/" are
// the default vhost; a trailing slash is ignored).
func sameBroker(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ua, errA := amqp.ParseURI(strings.TrimSpace(a))
	ub, errB := amqp.ParseURI(strings.TrimSpace(b))
	if errA != nil || errB != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	vhost := func(v string) string {
		if v = strings.TrimSuffix(v, "/"); v == "" {
			return "/"
		}
		return v
	}
	if vhost(ua.Vhost) != vhost(ub.Vhost) {
		return false
	}
	if ua.Scheme == ub.Scheme && ua.Port != ub.Port {
		return false
	}
	return sameHost(ua.Host, ub.Host)
}

// sameHost reports whether two host names or addresses may be one host:
// equal ignoring case, or resolving to a common address. A name that does
// not resolve (within 2 s) is compared as text only.
func sameHost(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs := func(h string) []string {
		if ip := net.ParseIP(h); ip != nil {
			return []string{ip.String()}
		}
		got, err := net.DefaultResolver.LookupHost(ctx, h)
		if err != nil {
			return nil
		}
		for i, s := range got {
			if ip := net.ParseIP(s); ip != nil {
				got[i] = ip.String()
			}
		}
		return got
	}
	as := addrs(a)
	for _, x := range addrs(b) {
		if slices.Contains(as, x) {
			return true
		}
	}
	return false
}

// republishRange publishes the events of (from, to] in log order through a
// confirmed, spooled publisher, and returns once the broker confirmed them
// all.
func republishRange(ctx context.Context, logger *slog.Logger, l *store.Log, o republishOptions, from, to int64, progress func(done, total int64)) (republishResult, error) {
	res := republishResult{FromSeq: from, ToSeq: to}
	spool := o.spool
	if spool == "" {
		dir, err := os.MkdirTemp("", "causeway-republish-")
		if err != nil {
			return res, fmt.Errorf("republish spool: %w", err)
		}
		defer os.RemoveAll(dir)
		spool = filepath.Join(dir, "spool.db")
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{Conn: bus.Conn{URL: o.url}, SpoolPath: spool, Exchange: o.exchange, SpoolMaxEvents: o.spoolMaxEvents},
		bus.Deps{Logger: logger})
	if err != nil {
		return res, fmt.Errorf("republish publisher: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- pub.Run(runCtx) }()
	defer func() {
		cancel()
		<-ran
		if err := pub.Close(); err != nil {
			logger.Warn("close republish spool", "err", err)
		}
	}()
	// The log is read no further ahead of the broker's confirmations than
	// half the spool holds: read at the database's pace, a log longer than
	// the spool (a million events by default) would fill it and fail, and
	// a shorter one would be copied whole to disk first.
	maxEvents := o.spoolMaxEvents
	if maxEvents == 0 {
		maxEvents = bus.DefaultSpoolMaxEvents
	}
	window, windowBytes := max(1, maxEvents/2), int64(bus.DefaultSpoolMaxBytes/2)
	batch := make([]event.Record, 0, o.batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := waitSpool(ctx, pub, ran, o.exchange, func(events int, bytes int64) bool {
			return events == 0 || (events+len(batch) <= window && bytes < windowBytes)
		}); err != nil {
			return err
		}
		if err := pub.PublishRecords(ctx, batch...); err != nil {
			return fmt.Errorf("republish up to seq %d: %w", to, err)
		}
		res.Published += int64(len(batch))
		batch = batch[:0]
		if progress != nil {
			progress(res.Published, to-from)
		}
		return nil
	}
	next := from + 1
	for rec, err := range l.Scan(ctx, from, to) {
		if err != nil {
			return res, fmt.Errorf("republish: read the log: %w", err)
		}
		if rec.Seq != next {
			return res, badInput("the log misses seq %d..%d (retention); give a later --from", next, rec.Seq-1)
		}
		next++
		batch = append(batch, rec)
		if len(batch) == o.batch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if next != to+1 {
		return res, fmt.Errorf("republish: the log ended at seq %d, before %d", next-1, to)
	}
	// The spool empties as the broker confirms.
	return res, waitSpool(ctx, pub, ran, o.exchange, func(events int, _ int64) bool { return events == 0 })
}

// waitSpool waits until ok says yes to what pub's spool holds, as the
// broker confirms; it fails when the broker returns events as unroutable,
// the publisher stops (ran) or ctx ends.
func waitSpool(ctx context.Context, pub *bus.Publisher, ran chan error, exchange string, ok func(events int, bytes int64) bool) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok(pub.Spooled()) {
			return nil
		}
		if pub.Returned() > 0 {
			return fmt.Errorf("republish: the broker returned events as unroutable: nothing is bound to exchange %s", exchange)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-ran:
			ran <- err
			return fmt.Errorf("republish: publisher stopped: %w", err)
		case <-tick.C:
		}
	}
}
