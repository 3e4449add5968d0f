package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/when"
	"github.com/causeway/causeway/notifier/subscription"
)

// MaxClockSkew is how far past the server's clock ?at= may be: a client
// asking for "now" on a host whose clock is slightly ahead is answered.
const MaxClockSkew = 5 * time.Second

// MaxRCAPaths bounds the causal paths listed in an RCA answer (their
// number grows exponentially with the layers of alarms on them).
const MaxRCAPaths = graph.MaxPaths

func toResource(v graph.Vertex) Resource {
	return Resource{
		VitrageID: strconv.FormatInt(int64(v.ID), 10), ID: v.ExternalID, Category: v.Category, Type: v.Type,
		Name: v.Name, State: v.State, Severity: v.Severity, DeducedState: v.DeducedState,
		AggregatedState: v.AggregatedState, OperationalState: v.OperationalState,
		ProjectID: v.ProjectID, Source: v.Source, IsDeleted: v.IsDeleted, IsPlaceholder: v.IsPlaceholder,
		IsMarkedDown: v.IsMarkedDown, SampleTimestamp: v.SampleTimestamp, UpdateTimestamp: v.UpdateTimestamp,
		Properties: v.Properties,
	}
}

// filter selects vertices by the query parameters every list shares.
// Placeholders (vertices referenced before their datasource reported
// them) are left out, as Vitrage's resource and topology queries leave out
// vitrage_is_placeholder, unless all=true, which shows everything.
type filter struct {
	category            string // "" = any
	typ                 string
	projectID           string
	includeDeleted      bool
	includePlaceholders bool
}

func parseFilter(r *http.Request, category string) (filter, error) {
	q := r.URL.Query()
	f := filter{category: category, typ: q.Get("type"), projectID: q.Get("project_id")}
	if c := q.Get("category"); c != "" && category == "" {
		switch strings.ToUpper(c) {
		case graph.CategoryResource, graph.CategoryAlarm:
			f.category = strings.ToUpper(c)
		case "ALL":
			f.category = ""
		default:
			return f, fmt.Errorf("category: %q is not RESOURCE, ALARM or all", c)
		}
	} else if c != "" && !strings.EqualFold(c, category) {
		// The endpoint names its category: another one would be ignored.
		return f, fmt.Errorf("category: %q on an endpoint of %s only", c, category)
	}
	if v := q.Get("all"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("all: %q is not a boolean", v)
		}
		f.includeDeleted, f.includePlaceholders = b, b
	}
	return f, nil
}

func (f filter) match(v graph.Vertex) bool {
	return (f.category == "" || v.Category == f.category) &&
		(f.typ == "" || v.Type == f.typ) &&
		(f.projectID == "" || v.ProjectID == f.projectID) &&
		(f.includeDeleted || !v.IsDeleted) &&
		(f.includePlaceholders || !v.IsPlaceholder)
}

func parseVertexID(s string) (graph.VertexID, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a vitrage_id", s)
	}
	return graph.VertexID(n), nil
}

// list answers GET /v1/resources and /v1/alarms a page at a time,
// ascending by vitrage_id (the order of the unpaged list of earlier
// releases): ?limit= of them (at most, and by default, Config.MaxPageSize)
// after the vitrage_id ?marker=, with the marker of the next page while
// more follow. A marker needs not be in the graph any more: the page
// starts after its place in the order, so an entity purged or filtered
// out between pages does not stop the listing. Each page says the seq it
// reflects; a client that sees it change knows the graph moved between
// its pages (an entity may then be listed as of another seq than its
// neighbours, or, created behind the marker, missed).
func (s *Server) list(w http.ResponseWriter, r *http.Request, category string) {
	f, err := parseFilter(r, category)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	on, err := parseOn(r, category)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	limit, after, err := parsePage(r, s.cfg.MaxPageSize)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	var resp ResourcesResponse
	err = s.b.View(func(g View, seq int64) error {
		resp.Meta = s.meta(seq)
		resp.Items = []Resource{}
		ids := g.VertexIDs()
		start := sort.Search(len(ids), func(i int) bool { return ids[i] > after })
		for _, id := range ids[start:] {
			v, ok := g.Vertex(id)
			if !ok || !f.match(v) {
				continue
			}
			if on >= 0 && !alarmOn(g, v, on) {
				continue
			}
			if len(resp.Items) == limit {
				// One more follows: the page's last is the next's marker.
				resp.Next = resp.Items[limit-1].VitrageID
				break
			}
			resp.Items = append(resp.Items, toResource(v))
		}
		return nil
	})
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

// parsePage reads ?limit= (1 or more; over maxPage, or none: maxPage, as
// OpenStack's APIs bound a page by their max_limit) and ?marker= (the
// vitrage_id the page starts after; none: -1, from the first).
func parsePage(r *http.Request, maxPage int) (limit int, after graph.VertexID, err error) {
	q := r.URL.Query()
	limit, after = maxPage, -1
	if q.Has("limit") {
		v := q.Get("limit")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("limit: %q is not a positive integer (the page size; at most %d, processor.api.max_page_size)", v, maxPage)
		}
		limit = min(n, maxPage)
	}
	if q.Has("marker") {
		v := q.Get("marker")
		id, err := parseVertexID(v)
		if err != nil {
			return 0, 0, fmt.Errorf("marker: %w (the next marker of the page before)", err)
		}
		after = id
	}
	return limit, after, nil
}

// parseOn reads ?resource=, the vitrage_id of the resource whose alarms
// a list or count of alarms keeps (-1: every alarm). It filters alarms
// only: a resource list or count refuses it.
func parseOn(r *http.Request, category string) (graph.VertexID, error) {
	v := r.URL.Query().Get("resource")
	if v == "" {
		return -1, nil
	}
	if category != graph.CategoryAlarm {
		return -1, errors.New("resource: filters alarms only (GET /v1/alarms?resource=)")
	}
	on, err := parseVertexID(v)
	if err != nil {
		return -1, fmt.Errorf("resource: %w", err)
	}
	return on, nil
}

// alarmOn says whether alarm is on resource: it has a live `on` edge to
// it, or, cleared, had one when it last cleared: of its `on` edges deleted
// together with it (not retracted before), those of its last occurrence,
// deleted last (a resource deleted before the alarm cleared took the edge
// with it earlier, so it is still the latest).
func alarmOn(g GraphView, alarm graph.Vertex, resource graph.VertexID) bool {
	var last time.Time
	on := false
	for _, e := range g.Out(alarm.ID) {
		if e.Relationship != graph.RelOn {
			continue
		}
		switch {
		case !e.IsDeleted:
			if e.To == resource {
				return true
			}
		case alarm.IsDeleted && e.DeletedWithVertex:
			if e.UpdateTimestamp.After(last) {
				last, on = e.UpdateTimestamp, false
			}
			if e.UpdateTimestamp.Equal(last) && e.To == resource {
				on = true
			}
		}
	}
	return on
}

func (s *Server) resourceList(w http.ResponseWriter, r *http.Request) {
	s.list(w, r, graph.CategoryResource)
}
func (s *Server) alarmList(w http.ResponseWriter, r *http.Request) { s.list(w, r, graph.CategoryAlarm) }

func (s *Server) show(w http.ResponseWriter, r *http.Request, category string) {
	id, err := parseVertexID(r.PathValue("id"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	var resp ResourceResponse
	found := false
	err = s.b.View(func(g View, seq int64) error {
		resp.Meta = s.meta(seq)
		v, ok := g.Vertex(id)
		if ok && v.Category == category {
			found = true
			resp.Item = toResource(v)
		}
		return nil
	})
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	if !found {
		s.fail(w, http.StatusNotFound, resp.Seq, fmt.Errorf("no %s with vitrage_id %d", strings.ToLower(category), id))
		return
	}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

func (s *Server) resourceShow(w http.ResponseWriter, r *http.Request) {
	s.show(w, r, graph.CategoryResource)
}
func (s *Server) alarmShow(w http.ResponseWriter, r *http.Request) {
	s.show(w, r, graph.CategoryAlarm)
}

// count groups resources by type, alarms by operational severity (as
// Vitrage's `resource count` and `alarm count` do); ?group_by= picks
// another field (type, state, severity, project_id, source). It counts
// what the list with the same filters shows.
func (s *Server) count(w http.ResponseWriter, r *http.Request, category, defaultGroup string) {
	f, err := parseFilter(r, category)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	on, err := parseOn(r, category)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	group := r.URL.Query().Get("group_by")
	if group == "" {
		group = defaultGroup
	}
	key, ok := groupKeys[group]
	if !ok {
		s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("group_by: %q is not one of type, state, severity, project_id, source", group))
		return
	}
	if group == "severity" && category != graph.CategoryAlarm {
		s.fail(w, http.StatusBadRequest, 0, errors.New("group_by: severity is an alarm's; group resources by state"))
		return
	}
	var resp CountResponse
	err = s.b.View(func(g View, seq int64) error {
		resp.Meta = s.meta(seq)
		resp.Counts = map[string]int{}
		for _, id := range g.VertexIDs() {
			v, ok := g.Vertex(id)
			if !ok || !f.match(v) || (on >= 0 && !alarmOn(g, v, on)) {
				continue
			}
			k := key(v)
			if k == "" {
				k = "N/A"
			}
			resp.Counts[k]++
			resp.Total++
		}
		return nil
	})
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

// groupKeys are the fields a count groups by. An alarm's operational
// state is its operational severity (the normalizer maps it from the
// severity), so state and severity group alarms alike.
var groupKeys = map[string]func(graph.Vertex) string{
	"type":       func(v graph.Vertex) string { return v.Type },
	"state":      func(v graph.Vertex) string { return v.OperationalState },
	"severity":   func(v graph.Vertex) string { return v.OperationalState },
	"project_id": func(v graph.Vertex) string { return v.ProjectID },
	"source":     func(v graph.Vertex) string { return v.Source },
}

func (s *Server) resourceCount(w http.ResponseWriter, r *http.Request) {
	s.count(w, r, graph.CategoryResource, "type")
}
func (s *Server) alarmCount(w http.ResponseWriter, r *http.Request) {
	s.count(w, r, graph.CategoryAlarm, "severity")
}

// nodeLink builds a node-link graph of ids (ascending) and the edges
// between them that keep accepts, in a deterministic order.
func nodeLink(g GraphView, ids []graph.VertexID, keep func(graph.Edge) bool) Graph {
	index := make(map[graph.VertexID]int, len(ids))
	out := Graph{Directed: true, Multigraph: true, Nodes: make([]Resource, 0, len(ids)), Links: []Link{}}
	for _, id := range ids {
		v, _ := g.Vertex(id)
		index[id] = len(out.Nodes)
		out.Nodes = append(out.Nodes, toResource(v))
	}
	for _, id := range ids {
		for _, e := range g.Out(id) {
			to, ok := index[e.To]
			if !ok || !keep(e) {
				continue
			}
			out.Links = append(out.Links, Link{Source: index[id], Target: to, Relationship: e.Relationship, Key: e.Relationship, IsDeleted: e.IsDeleted})
		}
	}
	return out
}

// rca answers GET /v1/rca/{id}: live, or at ?seq= or ?at= (RFC 3339,
// "now" or relative: -2h; not in the future) on a reconstructed graph.
func (s *Server) rca(w http.ResponseWriter, r *http.Request) {
	id, err := parseVertexID(r.PathValue("id"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	// A parameter given empty (a client's unset variable) is refused like
	// any bad value: the question is about the past, and the present would
	// be a wrong answer (as liveOnly refuses ?at= and ?seq= given at all).
	q := r.URL.Query()
	var seq int64
	var at time.Time
	if q.Has("seq") {
		v := q.Get("seq")
		if seq, err = strconv.ParseInt(v, 10, 64); err != nil || seq <= 0 {
			s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("seq: %q is not a positive integer", v))
			return
		}
	}
	if q.Has("at") {
		v := q.Get("at")
		if seq > 0 {
			s.fail(w, http.StatusBadRequest, 0, errors.New("give seq or at, not both"))
			return
		}
		now := s.now()
		if at, err = when.Parse(v, now); err != nil {
			s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("at: %w", err))
			return
		}
		if at.After(now.Add(MaxClockSkew)) {
			// The log up to a future time is not known yet: an answer
			// would change as events arrive (as it may for a time close
			// to now: recorded_at is the writers' clock).
			s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("at: %s is in the future", at.Format(time.RFC3339Nano)))
			return
		}
	}
	var resp RCAResponse
	found := false
	answer := func(g GraphView, at int64) {
		resp.Meta = s.meta(at)
		found = ComputeRCA(g, id, &resp)
	}
	// Given at all, ?seq= or ?at= asks about the past: at may be Go's zero
	// time (0001-01-01T00:00:00Z), before every log, and is no "live".
	if q.Has("seq") || q.Has("at") {
		// A historical answer, error or not, carries the seq it was
		// reconstructed at, or none: never the live one.
		asked := fmt.Sprintf("seq %d", seq)
		if seq == 0 {
			asked = at.UTC().Format(time.RFC3339Nano)
		}
		past, err := s.b.Reconstruct(r.Context(), seq, at)
		pr, pastRetention := errors.AsType[*PastRetention](err)
		switch {
		case pastRetention:
			s.failHistorical(w, http.StatusNotFound, noSeq, fmt.Errorf("historical rca at %s: %s", asked, pr.explain()))
			return
		case errors.Is(err, ErrNotFound):
			s.failHistorical(w, http.StatusNotFound, noSeq, fmt.Errorf("historical rca at %s: %w", asked, err))
			return
		case errors.Is(err, ErrBusy):
			w.Header().Set("Retry-After", "2")
			s.failHistorical(w, http.StatusServiceUnavailable, noSeq, fmt.Errorf("historical rca at %s: %w", asked, err))
			return
		case retryable(err):
			w.Header().Set("Retry-After", "2")
			s.failHistorical(w, http.StatusServiceUnavailable, noSeq,
				dependency("event log database unavailable", fmt.Errorf("historical rca at %s: %w", asked, err)))
			return
		case err != nil:
			s.failHistorical(w, http.StatusInternalServerError, noSeq, fmt.Errorf("historical rca at %s: reconstruct: %w", asked, err))
			return
		}
		resp.Historical, resp.RecordedAt, resp.StaleSemantics = true, past.RecordedAt, past.StaleSemantics
		answer(past.Graph, past.Seq)
		if past.Release != nil {
			// Done with the graph: the query's slot is free before the
			// answer is written (a slow client holds none).
			past.Release()
		}
		past.Graph = nil
		if !found {
			where := fmt.Sprintf("seq %d, before the first event", past.Seq)
			if past.Seq > 0 {
				where = fmt.Sprintf("seq %d, recorded at %s", past.Seq, past.RecordedAt.UTC().Format(time.RFC3339Nano))
			}
			s.failHistorical(w, http.StatusNotFound, past.Seq, fmt.Errorf("no alarm with vitrage_id %d at %s (historical, asked at %s)", id, where, asked))
			return
		}
	} else if err := s.b.View(func(g View, seq int64) error { answer(g, seq); return nil }); err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	if !found {
		s.fail(w, http.StatusNotFound, resp.Seq, fmt.Errorf("no alarm with vitrage_id %d", id))
		return
	}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

// Analyser is implemented by views that analyse RCA themselves
// (graph.Graph, whose rules for cleared alarms and retracted edges are the
// canonical ones); ComputeRCA prefers it.
type Analyser interface {
	RCA(alarm graph.VertexID) (*graph.RCA, error)
}

// ComputeRCA fills resp's graph, root causes and paths for alarm, and
// reports whether g has it. It answers from the view's own analysis when it
// has one, and otherwise walks the `causes` edges itself (see walkRCA). The
// CLI's historical `rca show` answers with it too, so that its document is
// the API's.
func ComputeRCA(g GraphView, alarm graph.VertexID, resp *RCAResponse) bool {
	a, ok := g.(Analyser)
	if !ok {
		return walkRCA(g, alarm, resp)
	}
	r, err := a.RCA(alarm)
	if err != nil {
		return false
	}
	index := make(map[graph.VertexID]int, len(r.Alarms))
	resp.Graph = Graph{Directed: true, Multigraph: true, Nodes: []Resource{}, Links: []Link{}}
	for i, id := range r.Alarms {
		v, _ := g.Vertex(id)
		index[id] = i
		resp.Graph.Nodes = append(resp.Graph.Nodes, toResource(v))
	}
	for _, e := range r.Links {
		resp.Graph.Links = append(resp.Graph.Links, Link{Source: index[e.From], Target: index[e.To], Relationship: e.Relationship, Key: e.Relationship, IsDeleted: e.IsDeleted})
	}
	idx := index[alarm]
	resp.Graph.InspectedIndex = &idx
	resp.RootCauses = ids(r.Roots)
	resp.Paths = [][]string{}
	resp.PathsTruncated = r.Truncated
	for _, p := range r.Paths {
		if len(resp.Paths) == MaxRCAPaths {
			resp.PathsTruncated = true // more roots than paths
			break
		}
		resp.Paths = append(resp.Paths, ids(p))
	}
	return true
}

func ids(vs []graph.VertexID) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.FormatInt(int64(v), 10)
	}
	return out
}

// walkRCA fills resp with the alarms linked to alarm by `causes` edges,
// both ways, the root causes and the paths from each root to alarm, for
// views that do not analyse RCA themselves. A deleted (cleared) alarm's
// RCA includes deleted edges, so the path that explained it is still
// shown.
func walkRCA(g GraphView, alarm graph.VertexID, resp *RCAResponse) bool {
	v, ok := g.Vertex(alarm)
	if !ok || v.Category != graph.CategoryAlarm {
		return false
	}
	includeDeleted := v.IsDeleted
	keep := func(e graph.Edge) bool {
		return e.Relationship == graph.RelCauses && (includeDeleted || !e.IsDeleted)
	}
	seen := map[graph.VertexID]bool{alarm: true}
	queue := []graph.VertexID{alarm}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, e := range g.In(id) {
			if keep(e) && !seen[e.From] {
				seen[e.From] = true
				queue = append(queue, e.From)
			}
		}
		for _, e := range g.Out(id) {
			if keep(e) && !seen[e.To] {
				seen[e.To] = true
				queue = append(queue, e.To)
			}
		}
	}
	ids := make([]graph.VertexID, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	resp.Graph = nodeLink(g, ids, keep)
	idx := slices.Index(ids, alarm)
	resp.Graph.InspectedIndex = &idx

	// Roots: alarms that cause something here and have no cause here. The
	// alarm asked about is its own root when nothing causes it.
	resp.RootCauses = []string{}
	resp.Paths = [][]string{}
	hasCause := func(id graph.VertexID) bool {
		for _, e := range g.In(id) {
			if keep(e) && seen[e.From] {
				return true
			}
		}
		return false
	}
	for _, id := range ids {
		if hasCause(id) {
			continue
		}
		// Only roots that reach the alarm (following causes forward).
		paths := pathsTo(g, id, alarm, keep, MaxRCAPaths-len(resp.Paths)+1)
		if len(paths) == 0 {
			continue
		}
		resp.RootCauses = append(resp.RootCauses, strconv.FormatInt(int64(id), 10))
		if n := MaxRCAPaths - len(resp.Paths); len(paths) > n {
			paths, resp.PathsTruncated = paths[:n], true
		}
		resp.Paths = append(resp.Paths, paths...)
	}
	return true
}

// pathsTo lists the simple causal paths from -> to, at most limit of them.
func pathsTo(g GraphView, from, to graph.VertexID, keep func(graph.Edge) bool, limit int) [][]string {
	var out [][]string
	onPath := map[graph.VertexID]bool{}
	var path []graph.VertexID
	var dfs func(id graph.VertexID)
	dfs = func(id graph.VertexID) {
		if len(out) >= limit {
			return
		}
		path = append(path, id)
		onPath[id] = true
		if id == to {
			p := make([]string, len(path))
			for i, v := range path {
				p[i] = strconv.FormatInt(int64(v), 10)
			}
			out = append(out, p)
		} else {
			for _, e := range g.Out(id) {
				if keep(e) && !onPath[e.To] {
					dfs(e.To)
				}
			}
		}
		onPath[id] = false
		path = path[:len(path)-1]
	}
	dfs(from)
	return out
}

func (s *Server) templateList(w http.ResponseWriter, r *http.Request) {
	var resp TemplatesResponse
	err := s.b.View(func(v View, seq int64) error {
		resp.Meta = s.meta(seq)
		resp.Items = []Template{}
		for _, t := range v.Templates() {
			resp.Items = append(resp.Items, Template{Name: t.Name})
		}
		return nil
	})
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

func (s *Server) findTemplate(name string) (Template, Meta, bool, error) {
	var t Template
	var m Meta
	found := false
	err := s.b.View(func(v View, seq int64) error {
		m = s.meta(seq)
		for _, x := range v.Templates() {
			if x.Name == name {
				t, found = x, true
			}
		}
		return nil
	})
	return t, m, found, err
}

func (s *Server) templateShow(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	t, m, found, err := s.findTemplate(name)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	if !found {
		s.fail(w, http.StatusNotFound, m.Seq, fmt.Errorf("no template named %q", name))
		return
	}
	s.reply(w, http.StatusOK, m, TemplateResponse{Meta: m, Item: t})
}

// readTemplate reads a template body: raw YAML, or JSON {"body": "...",
// "params": {...}} with the values of its parameters. The JSON is decoded
// strictly, as every JSON body of the API: a field it does not know (a
// misspelt "params") would be dropped, and the template added with its
// parameters' defaults, not the values given. Its "name", if given, is
// returned: the template's own name must be it (nameProblems).
func readTemplate(r *http.Request) ([]byte, map[string]string, string, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		return nil, nil, "", fmt.Errorf("read request body: %w", err)
	}
	var params map[string]string
	var named string
	if isJSON(r.Header.Get("Content-Type")) {
		var t Template
		if err := decodeStrict(raw, &t); err != nil {
			return nil, nil, "", fmt.Errorf("decode request body: %w", err)
		}
		raw, params, named = []byte(t.Body), t.Params, t.Name
	}
	if len(raw) == 0 {
		return nil, nil, "", errors.New("empty template")
	}
	if len(raw) > template.MaxSize {
		return nil, nil, "", fmt.Errorf("template is larger than %d bytes", template.MaxSize)
	}
	return raw, params, named, nil
}

// isJSON reports whether a Content-Type is JSON's media type, whose name
// is case-insensitive (RFC 9110, 8.3.1), parameters (a charset) aside.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// decodeStrict decodes one JSON value into v, refusing a field v does not
// have and anything after the value.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// validate checks a template, with the values of its parameters, as the
// engine will load it: its includes resolve against the definition
// templates loaded in the live view. Its Meta is that view's: the answer
// reflects the seq checked against, not a later one (which may hold a
// definition the check did not see). named is the name the request gave, if
// any (readTemplate).
func (s *Server) validate(body []byte, params map[string]string, named string) (string, []Problem, Meta, error) {
	var loaded []Template
	var m Meta
	if err := s.b.View(func(v View, seq int64) error {
		m = s.meta(seq)
		loaded = v.Templates()
		return nil
	}); err != nil {
		return "", nil, m, err
	}
	name, problems := validateWith(body, params, definitions(loaded))
	if len(problems) == 0 && named != "" && named != name {
		// The template is added under its own name: another one in the
		// body would be dropped, and a show or delete of it find nothing.
		problems = []Problem{{Path: "name", Message: fmt.Sprintf("%q is not the template's name %q (its metadata.name, resolved), which it is added under", named, name)}}
	}
	if len(problems) == 0 {
		problems = s.logProblems(name, body, params)
	}
	return name, problems, m, nil
}

// templatePut is the event that adds a template.
func (s *Server) templatePut(name string, body []byte, params map[string]string) event.Event {
	ev := s.apiEvent(event.KindTemplatePut, name, string(body))
	ev.Template = &event.Template{Name: name, Body: string(body), Params: params}
	return ev
}

// logProblems are the refusals of the event that would add the template:
// the event log's limits (a name's or a parameter's length, the event's
// size with the body escaped in JSON) are not the template's, and a
// template valid to validate must not be refused by add at publish.
func (s *Server) logProblems(name string, body []byte, params map[string]string) []Problem {
	_, err := event.Encode(s.templatePut(name, body, params))
	if err == nil {
		return nil
	}
	if fe, ok := errors.AsType[*event.FieldError](err); ok {
		return []Problem{{Path: fe.Field, Message: fe.Msg}}
	}
	return []Problem{{Path: "event", Message: err.Error()}}
}

// definitions resolves an include by metadata name among the loaded
// templates, each with the params it was loaded with, as the engine does
// (the first by event name). The loaded templates are parsed once, at the
// first include: a template may list its includes many times, and each
// must not cost a parse of every loaded template.
func definitions(loaded []Template) func(string) (*template.Template, bool) {
	var byName map[string]*template.Template
	return func(name string) (*template.Template, bool) {
		if byName == nil {
			byName = map[string]*template.Template{}
			for _, l := range loaded {
				// Loaded from the log, read as the engine reads it.
				d, err := template.Parse([]byte(l.Body), template.Options{Params: l.Params, Stored: true})
				if err != nil || d.Type != template.TypeDefinition {
					continue
				}
				if _, dup := byName[d.Name]; !dup {
					byName[d.Name] = d
				}
			}
		}
		d, ok := byName[name]
		return d, ok
	}
}

// validateWith returns the template's name, resolved with its
// parameters' values or defaults (a name may be get_param(...), as
// Vitrage's examples have it), and its problems.
func validateWith(body []byte, params map[string]string, defs func(string) (*template.Template, bool)) (string, []Problem) {
	var out []Problem
	opts := template.Options{Params: params, Definitions: defs}
	for _, p := range template.Validate(body, opts) {
		out = append(out, Problem{Code: p.Code, Path: p.Path, Message: p.Message})
	}
	name, _, _, err := template.Header(body)
	if err != nil && len(out) == 0 {
		out = append(out, Problem{Message: err.Error()})
	}
	if len(out) == 0 {
		if t, err := template.Parse(body, opts); err == nil {
			name = t.Name
		}
	}
	if name == "" && len(out) == 0 {
		out = append(out, Problem{Path: "metadata.name", Message: "is required"})
	}
	return name, out
}

func (s *Server) templateValidate(w http.ResponseWriter, r *http.Request) {
	body, params, named, err := readTemplate(r)
	if err != nil {
		s.fail(w, bodyStatus(err), 0, err)
		return
	}
	name, problems, m, err := s.validate(body, params, named)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	s.reply(w, http.StatusOK, m, ValidateResponse{Meta: m, Name: name, Valid: len(problems) == 0, Problems: problems})
}

// apiEvent builds an event the API publishes. Its id includes the time,
// so adding the same template again after a delete is a new event.
func (s *Server) apiEvent(kind event.Kind, parts ...string) event.Event {
	now := s.now().UTC()
	return event.Event{
		V: event.Version, Source: "api", Kind: kind, ObservedAt: now,
		EventID: event.DeriveID(append([]string{"api", string(kind), now.Format(time.RFC3339Nano)}, parts...)...),
	}
}

func (s *Server) templateAdd(w http.ResponseWriter, r *http.Request) {
	body, params, named, err := readTemplate(r)
	if err != nil {
		s.fail(w, bodyStatus(err), 0, err)
		return
	}
	name, problems, m, err := s.validate(body, params, named)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	if len(problems) > 0 {
		// An include of a definition this node has not loaded (the other
		// problems may follow from it): 409, as the state may yet hold it
		// (a definition just added, not applied here yet); a client may
		// ask again.
		code := http.StatusBadRequest
		for _, p := range problems {
			if p.Code == template.CodeUnknownInclude {
				code = http.StatusConflict
			}
		}
		s.reply(w, code, m, ValidateResponse{Meta: m, Name: name, Valid: false, Problems: problems})
		return
	}
	s.publish(w, r, s.templatePut(name, body, params))
}

func (s *Server) templateDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	_, m, found, err := s.findTemplate(name)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	if !found {
		s.fail(w, http.StatusNotFound, m.Seq, fmt.Errorf("no template named %q", name))
		return
	}
	ev := s.apiEvent(event.KindTemplateDelete, name)
	ev.Template = &event.Template{Name: name}
	s.publish(w, r, ev)
}

// events answers POST /v1/events: a JSON event or an array of them, each
// decoded strictly by the envelope's codec.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		s.fail(w, bodyStatus(err), 0, fmt.Errorf("read request body: %w", err))
		return
	}
	evs, err := decodeEvents(raw)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	s.publish(w, r, evs...)
}

func decodeEvents(raw []byte) ([]event.Event, error) {
	trimmed := strings.TrimSpace(string(raw))
	var items []json.RawMessage
	if strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("decode events: %w", err)
		}
	} else {
		items = []json.RawMessage{raw}
	}
	if len(items) == 0 {
		return nil, errors.New("no events")
	}
	evs := make([]event.Event, 0, len(items))
	for i, it := range items {
		ev, err := event.Decode(it)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, evs ...event.Event) {
	if err := s.b.Publish(r.Context(), evs...); err != nil {
		// The publisher encodes every event before it spools any: one that
		// does not encode is refused for good, the rest is retryable.
		switch {
		case errors.Is(err, event.ErrTooLarge):
			s.fail(w, http.StatusRequestEntityTooLarge, 0, fmt.Errorf("publish: %w", err))
		case errors.Is(err, event.ErrInvalid):
			s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("publish: %w", err))
		default:
			// Logged with the answer's request id (shown).
			w.Header().Set("Retry-After", "2")
			s.fail(w, http.StatusServiceUnavailable, 0, dependency("event bus unavailable: the events were not accepted",
				fmt.Errorf("publish %d events from the api: %w", len(evs), err)))
		}
		return
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.EventID
	}
	m := s.meta(-1)
	s.reply(w, http.StatusAccepted, m, AcceptedResponse{Meta: m, EventIDs: ids})
}

// subscriptionPut answers PUT /v1/subscriptions/{id}: the body is the
// subscription's spec (notifier/subscription), validated strictly here and
// published, in its canonical form, as subscription.put — so it reaches the
// notifier through the log, like every change.
func (s *Server) subscriptionPut(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		s.fail(w, bodyStatus(err), 0, fmt.Errorf("read request body: %w", err))
		return
	}
	spec, err := subscription.Decode(raw)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	canon, err := subscription.Encode(spec)
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	ev := s.apiEvent(event.KindSubscriptionPut, id, string(canon))
	ev.Subscription = &event.Subscription{ID: id, Spec: canon}
	if err := ev.Validate(); err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	s.publish(w, r, ev)
}

// subscriptionList answers GET /v1/subscriptions: the subscriptions of the
// node's state, specs included (admin only: a spec's headers may carry a
// receiver's credentials).
func (s *Server) subscriptionList(w http.ResponseWriter, r *http.Request) {
	var resp SubscriptionsResponse
	err := s.b.View(func(v View, seq int64) error {
		resp.Meta = s.meta(seq)
		resp.Items = append([]Subscription{}, v.Subscriptions()...)
		return nil
	})
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

// subscriptionShow answers GET /v1/subscriptions/{id}: its spec, and a
// page of the open alarms it follows (?following_limit=,
// ?following_after=; see FollowingPage).
func (s *Server) subscriptionShow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var resp SubscriptionResponse
	found := false
	q := r.URL.Query()
	limit := 100
	if l := q.Get("following_limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("following_limit: %q is not in 1..10000", l))
			return
		}
		limit = n
	}
	after := q.Get("following_after")
	err := s.b.View(func(v View, seq int64) error {
		resp.Meta = s.meta(seq)
		for _, x := range v.Subscriptions() {
			if x.ID == id {
				resp.Item, found = x, true
			}
		}
		if found {
			resp.Following = followingPage(v.Following(id), after, limit)
		}
		return nil
	})
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, err)
		return
	}
	if !found {
		s.fail(w, http.StatusNotFound, resp.Seq, fmt.Errorf("no subscription %q", id))
		return
	}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

// followingPage is the page of keys (sorted) after after, at most limit.
func followingPage(keys []string, after string, limit int) FollowingPage {
	i := 0
	if after != "" {
		i, _ = slices.BinarySearch(keys, after)
		if i < len(keys) && keys[i] == after {
			i++
		}
	}
	p := FollowingPage{Alarms: slices.Clone(keys[i:min(len(keys), i+limit)])}
	if p.Alarms == nil {
		p.Alarms = []string{}
	}
	if i+limit < len(keys) {
		p.Next = p.Alarms[len(p.Alarms)-1]
	}
	return p
}

// subscriptionDelete answers DELETE /v1/subscriptions/{id}: published as
// subscription.delete; the notifier dead-letters what was still pending.
func (s *Server) subscriptionDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ev := s.apiEvent(event.KindSubscriptionDelete, id)
	ev.Subscription = &event.Subscription{ID: id}
	if err := ev.Validate(); err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	s.publish(w, r, ev)
}
