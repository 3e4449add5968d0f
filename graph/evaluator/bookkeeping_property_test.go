package evaluator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/event"
)

// richTpls are templates the deploy and scenario corpus lacks: two
// templates and an OR raising one alarm at different severities, NOT terms,
// a chain on deduced alarms, filters on what other scenarios deduce
// (vitrage_state, severity, marked down, aggregated and operational
// state), and versions of one name that replace each other.
var richTpls = map[string][]string{
	"sev_a": {`
metadata: {version: 3, name: sev_a, type: standard}
entities:
  alarm: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: HOST_PROBLEM, severity: CRITICAL, causing_alarm: alarm}
      - set_state: {target: host, state: ERROR}
`, `
metadata: {version: 3, name: sev_a, type: standard}
entities:
  alarm: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: HOST_PROBLEM, severity: MINOR, causing_alarm: alarm}
      - set_state: {target: host, state: SUBOPTIMAL}
`},
	"sev_b": {`
metadata: {version: 3, name: sev_b, type: standard}
entities:
  disk: {category: ALARM, name: DISK_SLOW}
  ping: {category: ALARM, name: PING_LOST}
  host: {type: nova.host}
scenarios:
  - condition: disk [on] host OR ping [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: HOST_PROBLEM, severity: WARNING}
      - set_state: {target: host, state: SUBOPTIMAL}
      - mark_down: {target: host}
`},
	"not_psu": {`
metadata: {version: 3, name: not_psu, type: standard}
entities:
  halarm: {category: ALARM}
  psu: {category: ALARM, name: PSU_FAILED}
  host: {type: nova.host}
  instance: {type: nova.instance}
scenarios:
  - condition: halarm [on] host AND host [contains] instance AND NOT psu [on] host
    actions:
      - raise_alarm: {target: instance, alarm_name: INSTANCE_AFFECTED, severity: MAJOR, causing_alarm: halarm}
      - set_state: {target: instance, state: SUBOPTIMAL}
`, `
metadata: {version: 3, name: not_psu, type: standard}
entities:
  halarm: {category: ALARM, name: DISK_SLOW}
  psu: {category: ALARM, name: PSU_FAILED}
  host: {type: nova.host}
  instance: {type: nova.instance}
scenarios:
  - condition: halarm [on] host AND host [contains] instance AND NOT psu [on] host
    actions:
      - raise_alarm: {target: instance, alarm_name: INSTANCE_AFFECTED, severity: CRITICAL, causing_alarm: halarm}
      - mark_down: {target: instance}
`},
	"chain": {`
metadata: {version: 3, name: chain, type: standard}
entities:
  hp: {category: ALARM, type: vitrage, name: HOST_PROBLEM}
  ia: {category: ALARM, type: vitrage, name: INSTANCE_AFFECTED}
  host: {type: nova.host}
  instance: {type: nova.instance}
scenarios:
  - condition: hp [on] host AND host [contains] instance
    actions:
      - raise_alarm: {target: instance, alarm_name: INSTANCE_AFFECTED, severity: WARNING, causing_alarm: hp}
  - condition: hp [on] host AND host [contains] instance AND ia [on] instance
    actions:
      - add_causal_relationship: {source: hp, target: ia}
`},
	"switch": {`
metadata: {version: 3, name: switch, type: standard}
entities:
  up: {category: ALARM, name: Uplink down}
  switch: {type: switch}
  host: {type: nova.host}
scenarios:
  - condition: up [on] switch AND switch [attached] host
    actions:
      - raise_alarm: {target: host, alarm_name: HOST_PROBLEM, severity: SEVERE, causing_alarm: up}
      - mark_down: {target: switch}
`},
	"derived": {`
metadata: {version: 3, name: derived, type: standard}
entities:
  host: {type: nova.host, vitrage_is_marked_down: true}
  hp: {category: ALARM, type: vitrage, severity: CRITICAL}
  instance: {type: nova.instance}
scenarios:
  - condition: hp [on] host AND host [contains] instance
    actions:
      - raise_alarm: {target: instance, alarm_name: CRIT_HOST, severity: CRITICAL, causing_alarm: hp}
  - condition: host [contains] instance
    actions:
      - mark_down: {target: instance}
`},
	"agg": {`
metadata: {version: 3, name: agg, type: standard}
entities:
  host: {type: nova.host, vitrage_aggregated_state: ERROR}
  instance: {type: nova.instance, vitrage_is_marked_down: false}
scenarios:
  - condition: host [contains] instance
    actions:
      - set_state: {target: instance, state: SUBOPTIMAL}
      - raise_alarm: {target: host, alarm_name: AGG, severity: MINOR}
`, `
metadata: {version: 3, name: agg, type: standard}
entities:
  host: {type: nova.host, vitrage_operational_state: ERROR}
  instance: {type: nova.instance, vitrage_operational_state: SUBOPTIMAL}
scenarios:
  - condition: host [contains] instance
    actions:
      - raise_alarm: {target: instance, alarm_name: OP, severity: MINOR}
`},
	"state": {`
metadata: {version: 3, name: state, type: standard}
entities:
  host: {type: nova.host, vitrage_state: ERROR}
  instance: {type: nova.instance}
  vol: {type: cinder.volume}
scenarios:
  - condition: host [contains] instance AND NOT vol [attached] instance
    actions:
      - set_state: {target: instance, state: ERROR}
`, `
metadata: {version: 3, name: state, type: standard}
entities:
  host: {type: nova.host, state: ERROR}
  instance: {type: nova.instance}
scenarios:
  - condition: host [contains] instance
    actions:
      - set_state: {target: instance, state: DEGRADED}
`},
}

// richLog is genLog with its template records mapped onto richTpls.
func richLog(t *testing.T, seed int64, n int) []event.Record {
	recs := genLog(t, seed, n)
	names := make([]string, 0, len(richTpls))
	for k := range richTpls {
		names = append(names, k)
	}
	sort.Strings(names)
	for i := range recs {
		ev := &recs[i].Event
		if ev.Template == nil {
			continue
		}
		h := fnv.New32a()
		fmt.Fprintf(h, "%s/%d", ev.Template.Name, i)
		x := h.Sum32()
		name := names[int(x)%len(names)]
		tp := *ev.Template
		tp.Name = name
		vs := richTpls[name]
		tp.Body = vs[int(x/7)%len(vs)]
		ev.Template = &tp
	}
	return recs
}

func scratchSummary(t *testing.T, a *Engine, recs []event.Record) []string {
	s := New(Config{}, nil)
	var final []event.Record
	for _, rec := range recs {
		if rec.Event.Template == nil {
			final = append(final, rec)
		}
	}
	applyAll(t, s, final)
	for i, ts := range a.State().Templates {
		rec := event.Record{Seq: int64(len(recs) + 1 + i), RecordedAt: recs[len(recs)-1].RecordedAt,
			Event: event.Event{V: 1, EventID: "t" + ts.Name, Source: "api", Kind: event.KindTemplatePut,
				Template: &event.Template{Name: ts.Name, Body: ts.Body}}}
		if err := s.Apply(rec); err != nil {
			t.Fatalf("scratch put %s: %v", ts.Name, err)
		}
	}
	return summary(s)
}

// TestPropertyRichTemplatesAgreeWithScratch checks, every 40 records of a
// random log over richTpls, that incremental evaluation shows what a
// from-scratch evaluation of the graph with the loaded templates shows, and
// that the bookkeeping matches the graph after every record.
func TestPropertyRichTemplatesAgreeWithScratch(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			recs := richLog(t, seed, 800)
			a := New(Config{}, nil)
			for i, r := range recs {
				if err := a.Apply(r); err != nil {
					t.Fatalf("apply %d: %v", r.Seq, err)
				}
				checkBookkeeping(t, a, r.Seq)
				if i%40 == 39 || i == len(recs)-1 {
					got, want := summary(a), scratchSummary(t, a, recs[:i+1])
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Fatalf("after seq %d: incremental differs from scratch:\n%s", r.Seq, lineDiff(got, want))
					}
				}
			}
			mid := int(seed*7919) % len(recs)
			c := New(Config{}, nil)
			applyAll(t, c, recs[:mid])
			raw, err := json.Marshal(c.State())
			if err != nil {
				t.Fatal(err)
			}
			var st State
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			r, err := Restore(st, Config{}, nil)
			if err != nil {
				t.Fatalf("restore at %d: %v", mid, err)
			}
			applyAll(t, r, recs[mid:])
			if da, dr := dump(t, a), dump(t, r); !bytes.Equal(da, dr) {
				t.Fatalf("restore at %d + rest differs from a full replay:\n%s", mid, firstDiff(da, dr))
			}
			t.Logf("%d effects at the end, templates %d: %v", len(summary(a)), len(a.State().Templates), summary(a))
		})
	}
}

// checkBookkeeping checks the bookkeeping against the graph: every stored
// match holds, every holding match is stored, every support is a stored
// match's, and every effect has a support and is shown.
func checkBookkeeping(t *testing.T, e *Engine, at int64) {
	t.Helper()
	stored := map[string]bool{}
	for _, m := range e.sortedMatches() {
		stored[m.key] = true
	}
	holds := map[string]bool{}
	for _, r := range e.rules {
		e.enumerate(r, r.slotOf[r.c.Positive[0]], 0, func(b []Binding) { holds[matchKey(r, b)] = true })
	}
	for k := range stored {
		if !holds[k] {
			t.Fatalf("seq %d: stored match %q does not hold", at, k)
		}
	}
	for k := range holds {
		if !stored[k] {
			t.Fatalf("seq %d: match %q holds, not stored", at, k)
		}
	}
	for ef := range e.effects.all {
		if len(ef.supports) == 0 {
			t.Fatalf("seq %d: effect %q without support", at, effectKey(ef))
		}
		if !ef.on {
			t.Fatalf("seq %d: effect %q not on", at, effectKey(ef))
		}
		for _, s := range ef.supports {
			i := strings.Index(s.ID, "\x00#")
			if i < 0 || !stored[s.ID[:i]] {
				t.Fatalf("seq %d: effect %q support %q of no stored match", at, effectKey(ef), s.ID)
			}
		}
		switch ef.kind {
		case kindAlarm:
			v, ok := e.g.Vertex(ef.alarmID)
			if !ok || v.IsDeleted || v.Severity != ef.applied {
				t.Fatalf("seq %d: alarm effect %q not shown: %+v", at, effectKey(ef), v)
			}
		case kindState:
			v, _ := e.g.Vertex(ef.target)
			if v.DeducedState != ef.applied {
				t.Fatalf("seq %d: state effect %q shows %q", at, effectKey(ef), v.DeducedState)
			}
		case kindDown:
			v, _ := e.g.Vertex(ef.target)
			if !v.IsMarkedDown {
				t.Fatalf("seq %d: down effect %q not shown", at, effectKey(ef))
			}
		case kindCauses:
			ed, ok := e.g.EdgeOf(ef.source, ef.target, "causes")
			if !ok || ed.IsDeleted {
				t.Fatalf("seq %d: causes effect %q not shown", at, effectKey(ef))
			}
		}
	}
	// Nothing shown without an effect.
	for _, id := range e.g.VertexIDs() {
		v, _ := e.g.Vertex(id)
		if v.IsDeleted {
			continue
		}
		if v.DeducedState != "" && e.effects.get(kindState, id, 0, "") == nil {
			t.Fatalf("seq %d: vertex %d shows deduced state %q without effect", at, id, v.DeducedState)
		}
		if v.IsMarkedDown && e.effects.get(kindDown, id, 0, "") == nil {
			t.Fatalf("seq %d: vertex %d marked down without effect", at, id)
		}
		for _, ed := range e.g.Out(id) {
			if ed.Relationship != "causes" || ed.IsDeleted {
				continue
			}
			to, _ := e.g.Vertex(ed.To)
			if !to.IsDeleted && e.effects.get(kindCauses, ed.To, id, "") == nil {
				t.Fatalf("seq %d: causes %d -> %d between live alarms without effect", at, id, ed.To)
			}
		}
	}
}

// TestPropertyBookkeepingMatchesGraph checks checkBookkeeping after every
// record of genLog's random log over the template corpus.
func TestPropertyBookkeepingMatchesGraph(t *testing.T) {
	n := 800
	if testing.Short() {
		n = 300
	}
	for _, seed := range seeds(t) {
		recs := genLog(t, seed, n)
		a := New(Config{}, nil)
		for _, r := range recs {
			if err := a.Apply(r); err != nil && !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("apply %d: %v", r.Seq, err)
			}
			checkBookkeeping(t, a, r.Seq)
		}
	}
}
