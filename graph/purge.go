package graph

import (
	"math"
	"slices"
	"time"
)

// DeletedRetention is how long, in log time, the graph keeps what was
// deleted: a deleted vertex is removed, with every edge to or from it, once
// its deletion (its update_timestamp) is more than DeletedRetention older
// than Now, and a deleted edge between two vertices that stay once its own
// deletion is; a placeholder that no edge names once they are gone goes
// with them. Until then RCA of a cleared alarm still has its path, and a
// reconstruction at a time T still sees what was deleted less than
// DeletedRetention before T.
//
// It is part of what applying the log means (evaluator.Semantics): every
// node and every replay must remove the same elements at the same record,
// so it is a constant, not a setting, and changing it is a semantics bump.
const DeletedRetention = 7 * 24 * time.Hour

// purgeEvery is the log time between two purges: Apply looks for what
// DeletedRetention expired when a record's RecordedAt enters a new period
// of it (a new hour since the epoch) compared with the previous record's,
// so at most once an hour of log time whatever the rate of records. It is
// part of the semantics as DeletedRetention is.
const purgeEvery = int64(time.Hour)

// floorDiv is a/b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// purgeDue reports whether a record recorded at now, after one recorded at
// prev, starts a new purge period.
func purgeDue(prev, now int64) bool {
	return floorDiv(now, purgeEvery) > floorDiv(prev, purgeEvery)
}

// Purged returns the ids of the vertices that the last Apply removed (see
// DeletedRetention; placeholders that nothing names any more included),
// ascending; nil when it removed none. Their ids are never given again.
// It is an output of Apply, as its changes are, not state: the evaluator
// drops what it still held of those vertices.
func (g *Graph) Purged() []VertexID { return g.purged }

// purge removes what was deleted more than DeletedRetention before Now: the
// deleted vertices deleted before then that no live edge touches (a vertex
// a live one still names in its relations stays, deleted, as the edge's
// end) with every edge to or from them, and the deleted edges deleted
// before then. Then the placeholders that no edge names any more, once
// those edges are gone: a placeholder holds nothing but its key, and one
// left behind by every alarm on a resource that no datasource reports (an
// alert on a short-lived pod) would keep the graph growing for ever. A
// removed vertex leaves a hole in the ids: ids are never reused, but the
// index by id (paged.Table) gives the hole's memory back. Removal emits
// no Change: what it removes was deleted already, or a placeholder, and
// matches nothing.
func (g *Graph) purge() {
	g.purged = nil
	if g.now < math.MinInt64+int64(DeletedRetention) {
		return
	}
	cut := g.now - int64(DeletedRetention)
	expired := func(e *edge) bool { return e.deleted && e.update < cut }
	for _, v := range g.verts.All {
		if v.deleted && v.update < cut && !g.touchedLive(v) {
			g.purged = append(g.purged, v.id)
		}
	}
	doomed := func(id VertexID) bool {
		_, ok := slices.BinarySearch(g.purged, id)
		return ok
	}
	drops := func(v *vertex) bool {
		if len(g.purged) > 0 && doomed(v.id) {
			return true
		}
		for i := range v.out {
			if e := &v.out[i]; expired(e) || (len(g.purged) > 0 && doomed(e.to)) {
				return true
			}
		}
		return false
	}
	// orphans are the placeholders whose last edge goes: the edges of
	// one are in its own list (a relation of direction in) and in its
	// sources' lists, so each list that loses one asks whether both are
	// empty now; the last one to be rewritten finds them so.
	var orphans []VertexID
	orphaned := func(v *vertex) {
		if v.placeholder && !v.deleted && len(v.out) == 0 && len(v.in) == 0 {
			orphans = append(orphans, v.id)
		}
	}
	for _, v := range g.verts.All {
		if len(v.out) == 0 || !drops(v) {
			continue
		}
		gone := doomed(v.id)
		kept := v.out[:0]
		for i := 0; i < len(v.out); {
			// The edges to one target, then whether any is left.
			to, left := v.out[i].to, false
			toGone := doomed(to)
			for ; i < len(v.out) && v.out[i].to == to; i++ {
				e := v.out[i]
				if gone || toGone || expired(&e) {
					for _, o := range e.owners {
						g.owned(o.entity, -1)
					}
					continue
				}
				kept = append(kept, e)
				left = true
			}
			if !left && !toGone {
				t := g.get(to)
				if j, ok := slices.BinarySearch(t.in, v.id); ok {
					t.in = slices.Delete(t.in, j, j+1)
				}
				if len(t.in) == 0 {
					t.in = nil
				}
				orphaned(t)
			}
		}
		clear(v.out[len(kept):])
		v.out = kept
		if len(v.out) == 0 {
			v.out = nil
			orphaned(v)
		}
	}
	if len(orphans) > 0 {
		g.purged = append(g.purged, orphans...)
		slices.Sort(g.purged)
		g.purged = slices.Compact(g.purged)
	}
	for _, id := range g.purged {
		v := g.get(id)
		g.keys.remove(g.key(v))
		g.verts.Set(int64(id), nil)
	}
	g.nverts -= len(g.purged)
	if len(g.purged) > 0 {
		g.verts.Trim()
	}
}

// touchedLive reports whether a live edge goes to or from v.
func (g *Graph) touchedLive(v *vertex) bool {
	for i := range v.out {
		if !v.out[i].deleted {
			return true
		}
	}
	for _, from := range v.in {
		fv := g.get(from)
		i, _ := fv.findOut(v.id, "")
		for ; i < len(fv.out) && fv.out[i].to == v.id; i++ {
			if !fv.out[i].deleted {
				return true
			}
		}
	}
	return false
}
