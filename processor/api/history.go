package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/when"
)

// ErrNoHistory is the 501 answer of a server without a HistoryReader.
var ErrNoHistory = errors.New("this node keeps no alarm history")

// HistoryReader answers from the alarm history the leader keeps in the
// database, without replaying anything (Deps.History).
type HistoryReader interface {
	// Head is the last seq whose history is written: what the answers
	// reflect (the live graph may be ahead of it).
	Head(ctx context.Context) (int64, error)
	AlarmHistory(ctx context.Context, q history.Query) (history.Page, error)
	AlarmStats(ctx context.Context, q history.StatsQuery) ([]history.Bucket, error)
	AlarmLinks(ctx context.Context, q history.LinksQuery) (history.LinksPage, error)
	// Coverage says whether the window [from, to] (zero: unbounded) is
	// complete and exact (history.CoverageOf); read after the rows it
	// qualifies.
	Coverage(ctx context.Context, from, to time.Time) (history.Coverage, error)
}

// HistoryResponse is GET /v1/history/alarms: one page of occurrences.
type HistoryResponse struct {
	Meta
	From  time.Time            `json:"from"`
	To    time.Time            `json:"to"`
	Items []history.Occurrence `json:"items"`
	// Next is the page token of the next page (?page=), "" on the last.
	Next string `json:"next,omitempty"`
	// Coverage says whether the window reaches before the history's
	// retention boundary (incomplete) or the event log's.
	history.Coverage
}

// StatsResponse is GET /v1/history/stats.
type StatsResponse struct {
	Meta
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	Interval string           `json:"interval"`
	Buckets  []history.Bucket `json:"buckets"`
	history.Coverage
}

// LinksResponse is GET /v1/history/links.
type LinksResponse struct {
	Meta
	Alarm string         `json:"alarm"`
	Links []history.Link `json:"links"`
	// Next is the page token of the next page (?page=), "" on the last.
	Next string `json:"next,omitempty"`
	// Coverage is that of the window (without from: incomplete once
	// retention pruned anything).
	history.Coverage
}

// historyRange reads ?from= and ?to= (default: the 24 hours before to,
// to = now).
func historyRange(r *http.Request, now time.Time) (from, to time.Time, err error) {
	q := r.URL.Query()
	to = now
	if v := q.Get("to"); v != "" {
		if to, err = when.Parse(v, now); err != nil {
			return from, to, fmt.Errorf("to: %w", err)
		}
	}
	from = to.Add(-24 * time.Hour)
	if v := q.Get("from"); v != "" {
		if from, err = when.Parse(v, now); err != nil {
			return from, to, fmt.Errorf("from: %w", err)
		}
	}
	if to.Before(from) {
		return from, to, fmt.Errorf("to %s is before from %s", to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	return from.UTC(), to.UTC(), nil
}

// historyRequest is the server's HistoryReader, the request's range and
// the meta of the answer (its seq: the history's head, read before the
// query, so the answer reflects at least it), or false with the error
// (501, 400, 500) written.
func (s *Server) historyRequest(w http.ResponseWriter, r *http.Request) (h HistoryReader, from, to time.Time, m Meta, ok bool) {
	h = s.history
	if h == nil {
		s.fail(w, http.StatusNotImplemented, 0, ErrNoHistory)
		return nil, from, to, m, false
	}
	from, to, err := historyRange(r, s.now())
	if err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return nil, from, to, m, false
	}
	head, err := h.Head(r.Context())
	if err != nil {
		s.historyFailed(w, err)
		return nil, from, to, m, false
	}
	return h, from, to, s.meta(head), true
}

// historyFailed answers an error of the history store: 400 for the
// query, 503 with Retry-After for a failure that may pass (saying only
// that the database is unavailable, but for busy), else 500.
func (s *Server) historyFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, history.ErrBadToken):
		s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("page: %w", err))
	case errors.Is(err, history.ErrBadQuery):
		s.fail(w, http.StatusBadRequest, 0, err)
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", "2")
		s.fail(w, http.StatusServiceUnavailable, 0, fmt.Errorf("alarm history: %w", err))
	case retryable(err):
		w.Header().Set("Retry-After", "2")
		s.fail(w, http.StatusServiceUnavailable, 0, dependency("alarm history database unavailable", fmt.Errorf("alarm history: %w", err)))
	default:
		s.fail(w, http.StatusInternalServerError, 0, fmt.Errorf("alarm history: %w", err))
	}
}

// tokenWindow returns the window a page token was made for, or from, to
// when it names none; on a bad token it answers and returns false.
func (s *Server) tokenWindow(w http.ResponseWriter, page string, from, to time.Time) (time.Time, time.Time, bool) {
	f, t, ok, err := history.PageWindow(page)
	if err != nil {
		s.historyFailed(w, err)
		return from, to, false
	}
	if ok {
		return f, t, true
	}
	return from, to, true
}

// pageLimit reads a history page's limit parameter (100 if absent); on
// a bad one it answers 400 and returns false. The range is checked by
// the history package.
func (s *Server) pageLimit(w http.ResponseWriter, v url.Values) (int, bool) {
	l := v.Get("limit")
	if l == "" {
		return 100, true
	}
	n, err := strconv.Atoi(l)
	if err != nil || n == 0 {
		// 0 would mean the default to history.List.
		s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("limit: %q is not in 1..10000", l))
		return 0, false
	}
	return n, true
}

// alarmHistory answers GET /v1/history/alarms?from=&to=&type=&resource=
// &severity=&limit=&page=: the occurrences active at some moment of
// [from, to], by raised seq, a page at a time. A page token is of one
// window: without from and to, a next page is of its token's; with
// another window, it is refused (400).
func (s *Server) alarmHistory(w http.ResponseWriter, r *http.Request) {
	h, from, to, meta, ok := s.historyRequest(w, r)
	if !ok {
		return
	}
	v := r.URL.Query()
	if page := v.Get("page"); page != "" && v.Get("from") == "" && v.Get("to") == "" {
		// A next page asked without a window is of its first page's, not
		// the 24 hours before a later now: that would skip what cleared
		// in between.
		if from, to, ok = s.tokenWindow(w, page, from, to); !ok {
			return
		}
	}
	limit, ok := s.pageLimit(w, v)
	if !ok {
		return
	}
	q := history.Query{From: from, To: to, Type: v.Get("type"), Resource: v.Get("resource"), Severity: v.Get("severity"), Limit: limit, After: v.Get("page")}
	p, err := h.AlarmHistory(r.Context(), q)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	if p.Items == nil {
		p.Items = []history.Occurrence{}
	}
	resp := HistoryResponse{Meta: meta, From: from, To: to, Items: p.Items, Next: p.Next, Coverage: p.Coverage}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

// alarmStats answers GET /v1/history/stats?from=&to=&interval=&type=:
// occurrences raised per interval (default 1h), by type and severity. What
// history.Stats refuses (from not before to, an interval under a second,
// more than 100000 buckets) is a 400.
func (s *Server) alarmStats(w http.ResponseWriter, r *http.Request) {
	h, from, to, meta, ok := s.historyRequest(w, r)
	if !ok {
		return
	}
	v := r.URL.Query()
	q := history.StatsQuery{From: from, To: to, Interval: time.Hour, Type: v.Get("type")}
	if i := v.Get("interval"); i != "" {
		var err error
		if q.Interval, err = time.ParseDuration(i); err != nil {
			s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("interval: %q is not a duration", i))
			return
		}
	}
	bs, err := h.AlarmStats(r.Context(), q)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	if bs == nil {
		bs = []history.Bucket{}
	}
	cov, err := h.Coverage(r.Context(), from, to)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	resp := StatsResponse{Meta: meta, From: from, To: to, Interval: q.Interval.String(), Buckets: bs, Coverage: cov}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}

// alarmLinks answers GET /v1/history/links?alarm=KEY&from=&to=&limit=
// &page=: the periods of the causal links into or out of one alarm (its
// history key, as the occurrences carry it), by start seq, a page at a
// time. Without from and to, all of them; a next page asked without
// them is of its token's window, as alarmHistory's.
func (s *Server) alarmLinks(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	bounded := v.Get("from") != "" || v.Get("to") != ""
	h, from, to, meta, ok := s.historyRequest(w, r)
	if !ok {
		return
	}
	if !bounded {
		from, to = time.Time{}, time.Time{}
		if page := v.Get("page"); page != "" {
			if from, to, ok = s.tokenWindow(w, page, from, to); !ok {
				return
			}
		}
	}
	key := v.Get("alarm")
	if key == "" {
		s.fail(w, http.StatusBadRequest, 0, errors.New("alarm: the alarm's history key is required"))
		return
	}
	limit, ok := s.pageLimit(w, v)
	if !ok {
		return
	}
	q := history.LinksQuery{Alarm: key, From: from, To: to, Limit: limit, After: v.Get("page")}
	p, err := h.AlarmLinks(r.Context(), q)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	if p.Links == nil {
		p.Links = []history.Link{}
	}
	cov, err := h.Coverage(r.Context(), from, to)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	resp := LinksResponse{Meta: meta, Alarm: key, Links: p.Links, Next: p.Next, Coverage: cov}
	s.reply(w, http.StatusOK, resp.Meta, resp)
}
