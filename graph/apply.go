package graph

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/causeway/causeway/internal/event"
)

// ErrSyncNotOpen is returned (wrapped) by Apply for a sync.end that has no
// matching open sync.begin. The record is otherwise applied (Now advances)
// and the graph is consistent: callers log it and go on with the log.
var ErrSyncNotOpen = errors.New("sync.end without a matching open sync.begin")

// ErrInvalidRecord is returned (wrapped) by Apply for a record whose event
// lacks what its kind needs. The graph is left unchanged.
var ErrInvalidRecord = errors.New("invalid record")

// Apply applies one record of the log and returns the changes it made, in
// order. entity.upsert, entity.delete, sync.begin, sync.end and tick are
// applied; template and subscription kinds change nothing but the logical
// clock (they belong to the evaluator and the notifier), so Now is the
// RecordedAt of the last record whichever its kind.
//
// Every timestamp Apply writes comes from rec: RecordedAt for
// update_timestamp and Now, ObservedAt for sample_timestamp. A record
// whose RecordedAt starts a new hour of log time first removes what was
// deleted more than DeletedRetention before it (see Purged).
func (g *Graph) Apply(rec event.Record) ([]Change, error) {
	return g.AppendApply(nil, rec)
}

// AppendApply is Apply appending the changes to changes: the evaluator
// applies every record into one slice that it reuses from record to
// record, where a slice of the graph's own was an allocation per record.
// On error it returns changes as it was given.
func (g *Graph) AppendApply(changes []Change, rec event.Record) ([]Change, error) {
	ev := &rec.Event
	switch ev.Kind {
	case event.KindEntityUpsert, event.KindEntityDelete:
		if ev.Entity == nil {
			return changes, fmt.Errorf("apply seq %d: %s without entity: %w", rec.Seq, ev.Kind, ErrInvalidRecord)
		}
	case event.KindSyncBegin, event.KindSyncEnd:
		if ev.Sync == nil {
			return changes, fmt.Errorf("apply seq %d: %s without sync: %w", rec.Seq, ev.Kind, ErrInvalidRecord)
		}
	}
	prev := g.now
	g.step++
	g.now = toNanos(rec.RecordedAt)
	g.purged = nil
	if purgeDue(prev, g.now) {
		g.purge()
	}
	switch ev.Kind {
	case event.KindEntityUpsert:
		return g.upsert(ev, changes), nil
	case event.KindEntityDelete:
		return g.deleteEntity(ev, changes), nil
	case event.KindSyncBegin:
		g.syncBegin(ev.Source, ev.Sync.ID)
		return changes, nil
	case event.KindSyncEnd:
		ch, ok := g.syncEnd(ev.Source, ev.Sync.ID, changes)
		if !ok {
			return changes, fmt.Errorf("apply seq %d: source %q sync %q: %w", rec.Seq, ev.Source, ev.Sync.ID, ErrSyncNotOpen)
		}
		return ch, nil
	}
	return changes, nil // tick, template and subscription kinds
}

func categoryOr(c string) string {
	if c == "" {
		return CategoryResource
	}
	return c
}

func (g *Graph) upsert(ev *event.Event, changes []Change) []Change {
	e := ev.Entity
	cat := categoryOr(e.Category)
	obs := toNanos(ev.ObservedAt)
	id, exists := g.lookup(cat, e.Type, e.ID)
	var v *vertex
	if exists {
		v = g.get(id)
		if g.s(v.source) == ev.Source {
			v.seen = g.step
		}
		if v.older(obs) {
			return changes
		}
	}
	var prev Vertex
	if exists {
		prev = g.export(v)
	} else {
		v = g.newVertex(g.sym(cat), g.sym(e.Type), e.ID)
	}
	v.name = e.Name
	if e.Name == v.ext {
		v.name = v.ext // share the bytes: names often repeat the id
	}
	v.state = g.sym(e.State)
	v.severity = g.sym(e.Severity)
	v.project = g.sym(e.ProjectID)
	v.source = g.sym(ev.Source)
	if v.deleted {
		g.revive(v)
	}
	v.placeholder = false
	v.sample = obs
	v.update = g.now
	v.seen = g.step
	v.props = g.props(e.Properties)
	g.normalize(v)
	switch {
	case !exists:
		changes = append(changes, Change{Op: VertexAdded, Vertex: g.exportPtr(v)})
	case g.vertexChanged(&prev, v):
		changes = append(changes, g.updated(VertexUpdated, prev, v))
	}
	return g.setRelations(v, ev.Source, e.Relations, changes)
}

// older reports whether an observation at obs is older than what the graph
// holds of v: its sample_timestamp, which a live placeholder does not have
// (a deleted one has its delete's).
func (v *vertex) older(obs int64) bool {
	return (!v.placeholder || v.deleted) && obs < v.sample
}

// vertexChanged reports whether v differs from prev in more than its
// timestamps.
func (g *Graph) vertexChanged(prev *Vertex, v *vertex) bool {
	if prev.Name != v.name || prev.State != g.s(v.state) || prev.Severity != g.s(v.severity) ||
		prev.ProjectID != g.s(v.project) || prev.Source != g.s(v.source) || prev.IsDeleted != v.deleted ||
		prev.IsPlaceholder != v.placeholder || prev.AggregatedState != g.s(v.agg) ||
		prev.OperationalState != g.s(v.op) || prev.DeducedState != g.s(v.deduced) ||
		prev.IsMarkedDown != v.markedDwn || len(prev.Properties) != len(v.props) {
		return true
	}
	for _, p := range v.props {
		if pv, ok := prev.Properties[p.k]; !ok || pv != p.v {
			return true
		}
	}
	return false
}

func (g *Graph) props(m map[string]string) []prop {
	if len(m) == 0 {
		return nil
	}
	out := make([]prop, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, prop{g.str(k), m[k]})
	}
	return out
}

// normKey is what normalize reads of a vertex: category, type, and the
// reported and deduced state (an alarm's severity, and none).
type normKey [4]sym

func (g *Graph) normalize(v *vertex) {
	k := normKey{v.category, v.typ, v.state, v.deduced}
	if v.category == symAlarm {
		k[2], k[3] = v.severity, 0
	}
	if g.lastNorm.ok && g.lastNorm.k == k {
		v.agg, v.op = g.lastNorm.r[0], g.lastNorm.r[1]
		return
	}
	r, ok := g.normed[k]
	if !ok {
		a, o := g.norm.Resolve(g.s(k[0]), g.s(k[1]), g.s(k[2]), g.s(k[3]))
		r = [2]sym{g.sym(a), g.sym(o)}
		g.normed[k] = r
	}
	g.lastNorm.k, g.lastNorm.r, g.lastNorm.ok = k, r, true
	v.agg, v.op = r[0], r[1]
}

// triple is an edge identity.
type triple struct {
	from, to VertexID
	rel      string
}

func cmpTriple(a, b triple) int {
	switch {
	case a.from != b.from:
		return cmpInt(a.from, b.from)
	case a.to != b.to:
		return cmpInt(a.to, b.to)
	case a.rel < b.rel:
		return -1
	case a.rel > b.rel:
		return 1
	}
	return 0
}

func cmpInt[T ~int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// setRelations replaces the relations source asserted for v with rels:
// edges it asserted before and no longer does lose that owner (and become
// deleted once no one asserts them), the others are created or undeleted.
// Edges of other sources are left alone.
func (g *Graph) setRelations(v *vertex, source string, rels []event.Relation, changes []Change) []Change {
	own := owner{v.id, g.str(source)}
	want := g.wantBuf[:0]
	for _, r := range rels {
		t := g.target(r.Category, r.Type, r.ID, &changes)
		if r.Direction == event.In {
			want = append(want, triple{t.id, v.id, r.Relationship})
		} else {
			want = append(want, triple{v.id, t.id, r.Relationship})
		}
	}
	slices.SortFunc(want, cmpTriple)
	want = slices.Compact(want)
	g.wantBuf = want[:0]
	if g.holds(v, own, want) {
		return changes
	}
	for _, t := range g.ownedBy(v, own) {
		if _, keep := slices.BinarySearchFunc(want, t, cmpTriple); keep {
			continue
		}
		changes = g.retractEdge(t, own, changes)
	}
	for _, t := range want {
		changes = g.assertEdge(t, own, changes)
	}
	return changes
}

// holds reports whether the edges own asserted are exactly want, and all
// in place: the common upsert, which reports the relations it reported
// before. Each edge of want is live and owned by own, and v owns no other:
// the owner entries naming v number len(want).
func (g *Graph) holds(v *vertex, own owner, want []triple) bool {
	if v.owning != len(want) {
		return false
	}
	for _, t := range want {
		from := g.get(t.from)
		i, ok := from.findOut(t.to, t.rel)
		if !ok || from.out[i].deleted || !from.out[i].hasOwner(own) {
			return false
		}
	}
	return true
}

// assertEdge adds own to the owners of edge t, creating or undeleting it.
func (g *Graph) assertEdge(t triple, own owner, changes []Change) []Change {
	e, created := g.ensureEdge(g.get(t.from), g.get(t.to), t.rel)
	if i, ok := e.findOwner(own); !ok {
		if cap(e.owners) == 0 {
			e.owners = g.ownerSlot()
		}
		e.owners = slices.Insert(e.owners, i, own)
		g.owned(own.entity, 1)
	}
	if !e.deleted {
		return changes
	}
	var prev Edge
	if !created {
		prev = exportEdge(t.from, e)
	}
	e.deleted, e.withVertex = false, false
	e.update = g.now
	if created {
		return append(changes, g.edgeAdded(t.from, e))
	}
	return append(changes, g.edgeUpdated(EdgeUpdated, prev, t.from, e))
}

// retractEdge removes own from the owners of edge t, deleting it when no
// owner is left.
func (g *Graph) retractEdge(t triple, own owner, changes []Change) []Change {
	from := g.get(t.from)
	i, ok := from.findOut(t.to, t.rel)
	if !ok {
		return changes
	}
	e := &from.out[i]
	if j, ok := e.findOwner(own); ok {
		e.owners = slices.Delete(e.owners, j, j+1)
		g.owned(own.entity, -1)
	}
	if len(e.owners) > 0 || e.deleted {
		return changes
	}
	prev := exportEdge(t.from, e)
	e.deleted = true
	e.update = g.now
	return append(changes, g.edgeUpdated(EdgeDeleted, prev, t.from, e))
}

// owned moves the count of owner entries naming vertex id by n.
func (g *Graph) owned(id VertexID, n int) {
	if v := g.get(id); v != nil {
		v.owning += n
	}
}

// ownedBy lists the edges incident to v that own asserted, sorted.
func (g *Graph) ownedBy(v *vertex, own owner) []triple {
	var ts []triple
	for i := range v.out {
		if v.out[i].hasOwner(own) {
			ts = append(ts, triple{v.id, v.out[i].to, v.out[i].rel})
		}
	}
	for _, from := range v.in {
		if from == v.id {
			continue // self loops are in v.out already
		}
		fv := g.get(from)
		i, _ := fv.findOut(v.id, "")
		for ; i < len(fv.out) && fv.out[i].to == v.id; i++ {
			if fv.out[i].hasOwner(own) {
				ts = append(ts, triple{from, v.id, fv.out[i].rel})
			}
		}
	}
	slices.SortFunc(ts, cmpTriple)
	return ts
}

// target returns the vertex a relation names, creating a placeholder when it
// is not known yet.
func (g *Graph) target(category, typ, ext string, changes *[]Change) *vertex {
	cat := categoryOr(category)
	if id, ok := g.lookup(cat, typ, ext); ok {
		return g.get(id)
	}
	v := g.newVertex(g.sym(cat), g.sym(typ), ext)
	v.placeholder = true
	v.update = g.now
	g.normalize(v)
	*changes = append(*changes, Change{Op: VertexAdded, Vertex: g.exportPtr(v)})
	return v
}

// deleteEntity applies an entity.delete. A delete keeps its observed time
// as the vertex's sample_timestamp, so that an upsert older than it, which
// the log may record after it (two services reporting one entity, a
// listener's retry), is ignored as any older update. Hence a delete of a
// deleted vertex still moves its sample_timestamp forward, and renews its
// deletion (update_timestamp), from which DeletedRetention counts: the
// vertex must hold the newer time back as long as it held the first. A
// delete of an entity the graph does not know leaves a tombstone: a
// placeholder (no datasource reported what it is) that is deleted,
// reported as a VertexAdded of a vertex that is not live. A delete of a placeholder
// leaves the same, with the edges that named it deleted.
func (g *Graph) deleteEntity(ev *event.Event, changes []Change) []Change {
	e := ev.Entity
	cat := categoryOr(e.Category)
	obs := toNanos(ev.ObservedAt)
	id, ok := g.lookup(cat, e.Type, e.ID)
	if !ok {
		v := g.newVertex(g.sym(cat), g.sym(e.Type), e.ID)
		v.placeholder, v.deleted = true, true
		v.sample, v.update = obs, g.now
		g.normalize(v)
		return append(changes, Change{Op: VertexAdded, Vertex: g.exportPtr(v)})
	}
	v := g.get(id)
	if v.older(obs) {
		return changes
	}
	v.sample = obs
	if v.deleted {
		v.update = g.now
		return changes
	}
	return g.softDelete(v, changes)
}

// revive undeletes v: a new occurrence of it starts. Its incoming edges
// deleted together with its previous occurrence stay deleted, and stop
// counting as having held until then (RCA): the causes of an alarm
// cleared and raised again are those of its new occurrence only. Its
// outgoing ones keep counting: what its previous occurrence caused, and
// is still cleared, was caused by it. An edge asserted again is undeleted
// by assertEdge.
func (g *Graph) revive(v *vertex) {
	v.deleted = false
	for _, from := range v.in {
		fv := g.get(from) // v itself for a self loop
		i, _ := fv.findOut(v.id, "")
		for ; i < len(fv.out) && fv.out[i].to == v.id; i++ {
			fv.out[i].withVertex = false
		}
	}
}

// softDelete marks v and all its edges deleted; edges lose their owners.
func (g *Graph) softDelete(v *vertex, changes []Change) []Change {
	del := func(from VertexID, e *edge) {
		for _, o := range e.owners {
			g.owned(o.entity, -1)
		}
		e.owners = nil
		if e.deleted {
			return
		}
		prev := exportEdge(from, e)
		e.deleted, e.withVertex = true, true
		e.update = g.now
		changes = append(changes, g.edgeUpdated(EdgeDeleted, prev, from, e))
	}
	for i := range v.out {
		del(v.id, &v.out[i])
	}
	for _, from := range v.in {
		if from == v.id {
			continue
		}
		fv := g.get(from)
		i, _ := fv.findOut(v.id, "")
		for ; i < len(fv.out) && fv.out[i].to == v.id; i++ {
			del(from, &fv.out[i])
		}
	}
	if v.deleted {
		return changes
	}
	prev := g.export(v)
	v.deleted = true
	v.update = g.now
	return append(changes, g.updated(VertexDeleted, prev, v))
}

// syncBegin opens the sync id of source. It supersedes the source's other
// open syncs: a pull whose end never came (its driver stopped or failed
// after the begin) would otherwise stay open for ever, and a driver runs
// one full pull of a source at a time.
func (g *Graph) syncBegin(source, id string) {
	s := openSync{source: g.str(source), id: id, begin: g.step}
	g.syncs = slices.DeleteFunc(g.syncs, func(o openSync) bool { return o.source == source })
	i, _ := slices.BinarySearchFunc(g.syncs, s, cmpSync)
	g.syncs = slices.Insert(g.syncs, i, s)
}

func cmpSync(a, b openSync) int {
	switch {
	case a.source < b.source:
		return -1
	case a.source > b.source:
		return 1
	case a.id < b.id:
		return -1
	case a.id > b.id:
		return 1
	}
	return 0
}

func (g *Graph) syncEnd(source, id string, changes []Change) ([]Change, bool) {
	i, found := slices.BinarySearchFunc(g.syncs, openSync{source: source, id: id}, cmpSync)
	if !found {
		return changes, false
	}
	begin := g.syncs[i].begin
	g.syncs = slices.Delete(g.syncs, i, i+1)
	for _, v := range g.verts.All {
		if g.s(v.source) != source || v.deleted || v.placeholder || v.seen > begin {
			continue
		}
		changes = g.softDelete(v, changes)
	}
	return changes, true
}
