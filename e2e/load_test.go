//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/internal/event"
	lam "github.com/causeway/causeway/listeners/alertmanager"
	"github.com/causeway/causeway/listeners/events"
)

// The load: Alertmanager webhooks (batches of alerts on a fixed set of
// alarms, cycling warning -> critical -> resolved, so that alarms are
// raised, change severity and clear) and, every tenth request, one event
// of the generic events API. Every event has its own event_id.
const (
	loadAlarms    = 3000 // distinct alarms (fingerprints)
	loadHosts     = 200  // resources the alarms are on
	everyNthIsAPI = 10   // every 10th request goes to /v1/events
)

// unit is one HTTP request of the load: events [start, start+n).
type unit struct {
	start, n int
	api      bool // /v1/events (n == 1) instead of an Alertmanager webhook
}

// loadGen sends the load to the listener and records every event it
// acknowledged: those are the accepted events.
type loadGen struct {
	url, token string
	base       time.Time
	client     *http.Client
	am         *lam.Webhook
	ev         *events.API
	units      []unit
	total      int
	rate       float64 // events/s; 0: unpaced

	next atomic.Int64 // next unit to send

	paceMu   sync.Mutex
	paceNext time.Time

	gateMu sync.Mutex
	gate   *sync.Cond
	limit  int // units starting at or past limit wait
	closed bool

	mu         sync.Mutex
	accepted   map[string]int // event_id -> requests answered 2xx that carried it
	acceptedN  atomic.Int64   // load events accepted (probes excluded)
	requests   int            // requests answered 2xx
	failures   map[string]int // attempts not answered 2xx, by kind
	sentEvents int            // events in requests answered 2xx, probes included
	attempted  int            // events in every attempt, retries included
	probes     int
	fatal      []string // answers that must never happen (4xx)
}

func newLoadGen(url, token string, total, batch int, rate float64, am *lam.Webhook, ev *events.API) *loadGen {
	g := &loadGen{
		url: url, token: token, total: total, rate: rate, am: am, ev: ev,
		base:     time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		client:   &http.Client{Timeout: 30 * time.Second},
		accepted: map[string]int{}, failures: map[string]int{},
	}
	g.gate = sync.NewCond(&g.gateMu)
	for i, k := 0, 0; i < total; k++ {
		u := unit{start: i, n: min(batch, total-i)}
		if k%everyNthIsAPI == everyNthIsAPI-1 {
			u.api, u.n = true, 1
		}
		g.units = append(g.units, u)
		i += u.n
	}
	g.limit = total
	return g
}

// setLimit lets the load go up to event index limit (the fault schedule
// holds it back so that it spans every fault).
func (g *loadGen) setLimit(limit int) {
	g.gateMu.Lock()
	g.limit = limit
	g.gateMu.Unlock()
	g.gate.Broadcast()
}

// raiseLimit is setLimit that never lowers the limit.
func (g *loadGen) raiseLimit(limit int) {
	g.gateMu.Lock()
	g.limit = max(g.limit, limit)
	g.gateMu.Unlock()
	g.gate.Broadcast()
}

func (g *loadGen) close() {
	g.gateMu.Lock()
	g.closed = true
	g.gateMu.Unlock()
	g.gate.Broadcast()
}

// run sends every unit with workers concurrent clients; it returns when
// all are accepted or ctx ends.
func (g *loadGen) run(ctx context.Context, workers int) error {
	stop := context.AfterFunc(ctx, g.close)
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				k := int(g.next.Add(1) - 1)
				if k >= len(g.units) {
					return
				}
				u := g.units[k]
				g.gateMu.Lock()
				for u.start >= g.limit && !g.closed {
					g.gate.Wait()
				}
				g.gateMu.Unlock()
				if err := ctx.Err(); err != nil {
					errc <- err
					return
				}
				g.pace(ctx, u.n)
				path, body, ids, err := g.build(u)
				if err != nil {
					errc <- err
					return
				}
				if err := g.post(ctx, path, body, len(ids)); err != nil {
					errc <- err
					return
				}
				g.record(ids, false)
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// pace spaces requests so that the load aims at rate events/s; after a
// stall it resumes at the rate, without a burst.
func (g *loadGen) pace(ctx context.Context, n int) {
	if g.rate <= 0 {
		return
	}
	g.paceMu.Lock()
	now := time.Now()
	if g.paceNext.Before(now) {
		g.paceNext = now
	}
	at := g.paceNext
	g.paceNext = g.paceNext.Add(time.Duration(float64(n) / g.rate * float64(time.Second)))
	g.paceMu.Unlock()
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(at)):
	}
}

func (g *loadGen) record(ids []string, probe bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		g.accepted[id]++
	}
	g.requests++
	g.sentEvents += len(ids)
	if probe {
		g.probes++
	} else {
		g.acceptedN.Add(int64(len(ids)))
	}
}

// build returns the request of u and the event ids the listener derives
// from it (by the listener's own decoders, configured alike).
func (g *loadGen) build(u unit) (path string, body []byte, ids []string, err error) {
	if u.api {
		body = g.apiBody("e2e.host.down", g.base.Add(time.Duration(u.start)*time.Millisecond),
			fmt.Sprintf("host-%d", u.start%loadHosts), []string{events.StatusDown, events.StatusUp}[u.start%2])
		path = events.DefaultPath
		evs, err := g.ev.Decode(body)
		if err != nil {
			return "", nil, nil, fmt.Errorf("decode own events body: %w", err)
		}
		return path, body, eventIDs(evs), nil
	}
	p := lam.Payload{Version: lam.Version, GroupKey: "e2e", Status: lam.StatusFiring, Receiver: "causeway"}
	for i := u.start; i < u.start+u.n; i++ {
		a, cycle := i%loadAlarms, i/loadAlarms
		al := lam.Alert{
			Fingerprint: fmt.Sprintf("%016x", a),
			Labels: map[string]string{
				"alertname": fmt.Sprintf("E2EAlarm%d", a%20), "resource_type": "nova.host",
				"resource_id": fmt.Sprintf("host-%d", a%loadHosts),
			},
		}
		at := g.base.Add(time.Duration(cycle) * time.Second)
		switch cycle % 3 {
		case 0:
			al.Status, al.StartsAt, al.Labels["severity"] = lam.StatusFiring, at, "warning"
		case 1:
			al.Status, al.StartsAt, al.Labels["severity"] = lam.StatusFiring, at, "critical"
		default:
			al.Status, al.StartsAt, al.EndsAt, al.Labels["severity"] = lam.StatusResolved, at.Add(-time.Second), at, "critical"
		}
		p.Alerts = append(p.Alerts, al)
	}
	if body, err = json.Marshal(p); err != nil {
		return "", nil, nil, err
	}
	evs, err := g.am.Decode(body)
	if err != nil {
		return "", nil, nil, fmt.Errorf("decode own webhook body: %w", err)
	}
	if len(evs) != u.n {
		return "", nil, nil, fmt.Errorf("own webhook of %d alerts decodes to %d events", u.n, len(evs))
	}
	return lam.DefaultPath, body, eventIDs(evs), nil
}

func (g *loadGen) apiBody(typ string, at time.Time, host, status string) []byte {
	b, _ := json.Marshal(events.Event{Type: typ, Time: at.Format(time.RFC3339Nano), Details: map[string]any{
		"hostname": host, "status": status, "severity": "critical", "source": "e2e",
	}})
	return b
}

// probe sends one extra event through the listener and returns its id:
// the fault schedule waits for it to reach every node.
func (g *loadGen) probe(ctx context.Context, n int) (string, error) {
	body := g.apiBody("e2e.probe", g.base.Add(-time.Hour).Add(time.Duration(n)*time.Millisecond), "probe-host",
		[]string{events.StatusDown, events.StatusUp}[n%2])
	evs, err := g.ev.Decode(body)
	if err != nil {
		return "", err
	}
	if err := g.post(ctx, events.DefaultPath, body, 1); err != nil {
		return "", err
	}
	ids := eventIDs(evs)
	g.record(ids, true)
	return ids[0], nil
}

// post sends until the listener answers 2xx: after a connection error or
// a 5xx the same body is sent again (same event ids: the log dedups).
func (g *loadGen) post(ctx context.Context, path string, body []byte, n int) error {
	backoff := 20 * time.Millisecond
	for {
		g.mu.Lock()
		g.attempted += n
		g.mu.Unlock()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.token)
		resp, err := g.client.Do(req)
		kind := "connection"
		if err == nil {
			snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			kind = "http " + strconv.Itoa(resp.StatusCode)
			if resp.StatusCode/100 == 4 {
				g.mu.Lock()
				g.fatal = append(g.fatal, fmt.Sprintf("%s: %s", kind, snippet))
				g.mu.Unlock()
				return fmt.Errorf("listener refused a valid request: %s: %s", kind, snippet)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.mu.Lock()
		g.failures[kind]++
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

type loadStats struct {
	requests, sentEvents, attempted, probes, distinct int
	failures                                          string
	fatal                                             []string
}

func (g *loadGen) stats() loadStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	var kinds []string
	for k, n := range g.failures {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(kinds)
	f := "none"
	if len(kinds) > 0 {
		f = fmt.Sprint(kinds)
	}
	return loadStats{requests: g.requests, sentEvents: g.sentEvents, attempted: g.attempted, probes: g.probes, distinct: len(g.accepted), failures: f, fatal: append([]string(nil), g.fatal...)}
}

// acceptedIDs returns a copy of the accepted event ids.
func (g *loadGen) acceptedIDs() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]bool, len(g.accepted))
	for id := range g.accepted {
		out[id] = true
	}
	return out
}

func eventIDs(evs []event.Event) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.EventID
	}
	return ids
}
