// Package listeners is the push side of intake: one authenticated HTTP
// server whose endpoints (Alertmanager webhooks, the generic events API)
// turn request bodies into events and publish them.
//
// Invariant 1 of DESIGN.md: a request is answered 2xx only after
// Publisher.Publish returned nil for all its events (they are confirmed or
// fsynced in the spool), and, on an endpoint that takes requests in part
// (Endpoint.InPart), after every event it took is published, made to fit
// (Endpoint.Shorten) or dead-lettered (DeadLetterPublisher), or listed as
// refused in the answer. Bad input is otherwise refused whole with a
// JSON body naming every problem: 400 (malformed or unmappable input), 401
// (credentials), 405, 413 (over max_body_bytes), 415 (not JSON, or
// compressed: Content-Encoding is not decoded), and 503 with Retry-After
// when the spool is full. A panic in a decoder is a 500
// and a log line, never a crash.
package listeners

import (
	"cmp"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/clip"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/liveness"
	"github.com/causeway/causeway/internal/lograte"
	"github.com/causeway/causeway/internal/tlsfile"
)

// Publisher is where the server hands events; internal/bus.Publisher is
// the real one.
type Publisher interface {
	Publish(ctx context.Context, evs ...event.Event) error
}

// Decoder turns one request body into the events it reports. Every error
// is the client's fault (400); errors.Join-ed errors become the problems
// of the answer, one each.
type Decoder interface {
	Decode(body []byte) ([]event.Event, error)
}

// DecoderFunc adapts a function to Decoder.
type DecoderFunc func(body []byte) ([]event.Event, error)

// Decode calls f.
func (f DecoderFunc) Decode(body []byte) ([]event.Event, error) { return f(body) }

// Endpoint is one POST endpoint of the server.
type Endpoint struct {
	// Name labels the endpoint's metrics and logs ("alertmanager", "events").
	Name string
	// Path is the URL path ("/v1/alertmanager").
	Path    string
	Decoder Decoder
	// MaxBodyBytes bounds the endpoint's request bodies (0: the server's
	// max_body_bytes).
	MaxBodyBytes int64
	// InPart says the endpoint takes a request in part: an event the
	// publisher refuses for good is kept out and the others are published.
	// One too large once encoded is made to fit by Shorten, else
	// dead-lettered with the reason (when the Publisher is a
	// DeadLetterPublisher; else it is listed as refused, as the decoder's
	// refusals are, see Refused); an invalid one is listed as refused.
	// Otherwise such an event refuses the request whole (413 or 400).
	InPart bool
	// Shorten, when set, is given every event of an InPart endpoint
	// before it is published. It returns the event, made to fit its
	// bound if it was over it (cut), with what it cut marked in it; or an
	// error saying why it cannot be made to fit (what identifies the event
	// is over the bound by itself): the event is then published whole, and
	// if the publisher refuses it as too large, the error is the dead
	// letter's reason. It must be a pure function of the event, and keep
	// its event id: a request sent again gives the same events, which the
	// log dedups.
	Shorten func(event.Event) (short event.Event, cut bool, err error)
}

// DeadLetterPublisher is a Publisher that can also dead-letter events, as
// internal/bus.Publisher does: evs are published and dead go to the
// dead-letter queue with their reasons, all durably (spooled) or none.
type DeadLetterPublisher interface {
	PublishOrDeadLetter(ctx context.Context, evs []event.Event, dead []bus.DeadEvent) error
}

// Deps are the server's collaborators.
type Deps struct {
	Publisher Publisher
	Endpoints []Endpoint
	Logger    *slog.Logger
	// Registerer defaults to no registration.
	Registerer prometheus.Registerer
	// Listener, when set, is served instead of listening on Config.Listen
	// (tests, socket activation).
	Listener net.Listener
	// Now is the clock events are checked against, and the one of the
	// looks at renewed TLS files (default time.Now).
	Now func() time.Time
}

// Server is the HTTP listener server.
type Server struct {
	cfg   Config
	deps  Deps
	creds credentials
	tls   *tls.Config // nil: plain HTTP
	log   *slog.Logger
	mux   *http.ServeMux

	requests *prometheus.CounterVec
	accepted *prometheus.CounterVec
	clamped  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	// shortened and deadLettered count the events of InPart endpoints too
	// large once encoded: made to fit, or dead-lettered.
	shortened    *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	inflight     prometheus.Gauge

	// bodies bounds the request bodies held at once (max_inflight_bytes).
	bodies byteBudget

	// publishing holds the requests' Publish calls in flight (Alive).
	publishing liveness.Ops

	// futureLog spaces out the warnings about events dated in the future:
	// a sender's clock stays ahead, and each of its requests has them.
	futureLog lograte.Limiter
}

// StallLimit is how long a request's Publish may run before Alive says
// the server is stuck.
const StallLimit = liveness.MinLimit

// Reasons of the rejected counter.
const (
	ReasonAuth        = "auth"
	ReasonMethod      = "method"
	ReasonNotFound    = "not_found" // no endpoint at the path (endpoint "unknown")
	ReasonContentType = "content_type"
	ReasonEncoding    = "content_encoding"
	ReasonTooLarge    = "too_large"
	ReasonBadInput    = "bad_input"
	ReasonSpoolFull   = "spool_full"
	ReasonBusy        = "busy" // max_inflight_bytes taken by other requests (503)
	ReasonPublish     = "publish_error"
	ReasonInternal    = "internal"
	ReasonPartial     = "partial" // part of a request refused, the rest taken (200)
)

// New validates cfg, reads the secret files and registers the metrics. It
// starts nothing.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("listener config: %w", err)
	}
	if deps.Publisher == nil {
		return nil, errors.New("listeners: a Publisher is required")
	}
	setDefaults(&cfg)
	creds, err := cfg.Auth.load()
	if err != nil {
		return nil, fmt.Errorf("listener config: %w", err)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	tlsConf, err := cfg.TLS.load(tlsfile.Options{Logger: deps.Logger.With("component", "listeners"), Now: deps.Now, Key: "listener.server.tls"})
	if err != nil {
		return nil, fmt.Errorf("listener config: %w", err)
	}
	s := &Server{
		cfg: cfg, deps: deps, creds: creds, tls: tlsConf, log: deps.Logger.With("component", "listeners"),
		mux: http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_listener_requests_total", Help: "Requests by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_listener_events_accepted_total", Help: "Events published (confirmed or spooled) by endpoint.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_listener_requests_rejected_total", Help: "Requests refused by endpoint and reason.",
		}, []string{"endpoint", "reason"}),
		clamped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_listener_future_events_total",
			Help: "Events dated more than max_clock_skew ahead of this host's clock, taken dated now plus the skew, by endpoint (a sender's clock is ahead).",
		}, []string{"endpoint"}),
		shortened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_listener_events_shortened_total",
			Help: "Events too large once encoded, published made to fit (an alert's annotations shortened), by endpoint.",
		}, []string{"endpoint"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_listener_events_dead_lettered_total",
			Help: "Events too large once encoded that could not be made to fit, dead-lettered with the reason (causeway dlq), by endpoint.",
		}, []string{"endpoint"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_listener_inflight_body_bytes",
			Help: "Request bodies held now, as counted against max_inflight_bytes.",
		}),
	}
	s.bodies.limit = cfg.MaxInflightBytes
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.accepted, s.rejected, s.clamped, s.shortened, s.deadLettered, s.inflight} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register listener metrics: %w", err)
			}
		}
	}
	seen := map[string]bool{}
	for i, ep := range deps.Endpoints {
		switch {
		case ep.Name == "" || ep.Decoder == nil:
			return nil, fmt.Errorf("listeners: endpoints[%d] needs a name and a decoder", i)
		case CheckPath(ep.Path) != nil:
			return nil, fmt.Errorf("listeners: endpoints[%d] (%s): path: %w", i, ep.Name, CheckPath(ep.Path))
		case seen[ep.Path]:
			return nil, fmt.Errorf("listeners: endpoints[%d]: path %s is used twice", i, ep.Path)
		case ep.MaxBodyBytes < 0:
			return nil, fmt.Errorf("listeners: endpoints[%d] (%s): max_body_bytes must not be negative", i, ep.Name)
		case ep.MaxBodyBytes > cfg.MaxInflightBytes:
			return nil, fmt.Errorf("listener config: max_inflight_bytes: %d is under the %s endpoint's max_body_bytes (%d): such a body could never be taken",
				cfg.MaxInflightBytes, ep.Name, ep.MaxBodyBytes)
		}
		seen[ep.Path] = true
		s.mux.Handle(ep.Path, s.endpoint(ep))
	}
	if !seen["/"] {
		s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			// Logged as every refusal: a sender with a wrong url (a
			// trailing slash, a typo) loses what it sends, and Alertmanager
			// does not retry a 404.
			s.requests.WithLabelValues("unknown", "404").Inc()
			s.rejected.WithLabelValues("unknown", ReasonNotFound).Inc()
			s.writeJSON(w, http.StatusNotFound, Problem{Error: "no endpoint at " + r.URL.Path})
			s.log.Info("request refused", "code", http.StatusNotFound, "reason", ReasonNotFound, "method", r.Method,
				"path", clip.String(r.URL.Path, 256), "remote", r.RemoteAddr)
		})
	}
	return s, nil
}

// CheckPath reports whether p can be an endpoint's path: a clean URL path
// ("/v1/alertmanager") of ASCII letters, digits and "-._~/". The path is
// registered on http.ServeMux as a pattern, which reads a space as the end
// of a method and braces as a wildcard, panics on one it cannot parse, and
// redirects a request to a path that is not clean: any other path would
// crash the listener at start, or take other requests than the ones it
// names.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /", p)
	}
	for _, c := range []byte(p) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0) {
			return fmt.Errorf("%q: must be made of ASCII letters, digits and -._~/ only, not %q", p, c)
		}
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return fmt.Errorf("%q is not a clean path (%q is)", p, clean)
	}
	return nil
}

func setDefaults(c *Config) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	def(&c.RetryAfter, DefaultRetryAfter)
	def(&c.MaxClockSkew, DefaultMaxClockSkew)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
}

// byteBudget hands out bytes up to limit; it is safe for concurrent use.
type byteBudget struct {
	mu    sync.Mutex
	used  int64
	limit int64
}

// take reserves n bytes if they fit, and reports whether they did.
func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// errBudgetFull is a heldReader's error when what it read does not fit
// in max_inflight_bytes beside the bodies being taken.
var errBudgetFull = errors.New("the bodies being taken fill max_inflight_bytes")

// heldReader reads a body of unknown length, holding each part it reads
// against the budget before handing it on.
type heldReader struct {
	r    io.Reader
	hold func(n int64) bool
}

func (h *heldReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 && !h.hold(int64(n)) {
		return 0, errBudgetFull
	}
	return n, err
}

// Alive reports whether the server is not stuck: no request has had its
// Publish in flight for longer than StallLimit (two minutes). A Publish
// returns once the events are fsynced in the spool, or at once when the
// spool is full (503), so only a hang outlives the limit. Serving no
// request, or refusing them while the broker has been away too long, is
// not stuck. (A Publish also ends when its client gives up; the
// publisher's own Alive watches the spool for those.) systemd's watchdog
// restarts a listener that is not alive; a client whose request was not
// answered 2xx sends it again.
func (s *Server) Alive() bool {
	if d := s.publishing.Longest(); d > StallLimit {
		s.log.Error("stuck: a request's publish has run past the stall limit", "running_for", d, "limit", StallLimit)
		return false
	}
	return true
}

// Handler is the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx ends, then stops accepting, waits up to
// ShutdownTimeout for the requests in flight (each publishes and answers)
// and returns nil. Requests still in flight then are cut, their
// connections closed unanswered (their clients send them again; nothing
// was answered 2xx that is not in the spool), with a warning: the stop is
// a clean one all the same, as a persister's whose grace ran out. It
// returns an error if it cannot listen or serve.
func (s *Server) Run(ctx context.Context) error {
	ln := s.deps.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
		}
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- srv.ServeTLS(ln, "", "") // the key pair is in TLSConfig
			return
		}
		errc <- srv.Serve(ln)
	}()
	s.log.Info("listening", "addr", ln.Addr().String(), "tls", s.tls != nil)
	if s.creds.open {
		// Opted into, and still worth seeing: anyone who reaches the
		// port can write into the event log.
		s.log.Warn("accepting unauthenticated requests: auth.insecure_no_auth is set, so anyone who reaches this address can publish events",
			"addr", ln.Addr().String(), "key", "listener.server.auth.insecure_no_auth")
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	if err != nil {
		_ = srv.Close()
		s.log.Warn("requests still in flight when shutdown_timeout passed: their connections are closed unanswered, so their clients send them again",
			"shutdown_timeout", s.cfg.ShutdownTimeout, "err", err)
	}
	return nil
}

// Problem is the JSON body of every refusal.
type Problem struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

// Accepted is the JSON body of a 200. Refused lists the parts of the
// request that were not taken (see Refused); Shortened counts the events
// accepted made to fit (Endpoint.Shorten), and DeadLettered says why each
// event too large to take was dead-lettered instead.
type Accepted struct {
	Accepted     int      `json:"accepted"`
	Shortened    int      `json:"shortened,omitempty"`
	DeadLettered []string `json:"dead_lettered,omitempty"`
	Refused      []string `json:"refused,omitempty"`
}

// Refused is what a Decoder returns, beside the events it could read, when
// only part of a request cannot be taken for good (an alert that no
// mapping rule maps): the server publishes the rest and answers 200 with
// the refused parts listed, logged and counted (reason "partial").
// Refusing the whole request would lose the good parts with the bad one,
// since no retry helps it (Alertmanager does not retry a 4xx). With no
// event readable, the request is refused whole (400).
type Refused struct{ Errs []error }

func (r *Refused) Error() string {
	if len(r.Errs) == 0 {
		return "part of the request refused"
	}
	return errors.Join(r.Errs...).Error()
}

// Unwrap returns the problems.
func (r *Refused) Unwrap() []error { return r.Errs }

func (s *Server) endpoint(ep Endpoint) http.Handler {
	log := s.log.With("endpoint", ep.Name)
	maxBody := cmp.Or(ep.MaxBodyBytes, s.cfg.MaxBodyBytes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusInternalServerError
		reason := ""
		defer func() {
			if v := recover(); v != nil {
				// A decoder bug must not take intake down; the client retries.
				log.Error("panic in handler", "panic", fmt.Sprint(v))
				code, reason = http.StatusInternalServerError, ReasonInternal
				s.writeJSON(w, code, Problem{Error: "internal error"})
			}
			s.requests.WithLabelValues(ep.Name, strconv.Itoa(code)).Inc()
			if reason != "" {
				s.rejected.WithLabelValues(ep.Name, reason).Inc()
			}
		}()
		var partial *Refused // parts of the request refused while the rest is taken
		refuse := func(c int, why, msg string, problems ...string) {
			if partial != nil { // refused whole after all: say why of those parts too
				problems = append(problems, problemsOf(partial)...)
			}
			code, reason = c, why
			s.writeJSON(w, c, Problem{Error: msg, Problems: problems})
			level := slog.LevelInfo
			switch why {
			case ReasonTooLarge:
				// Lost: no client retries a 413 (Alertmanager retries
				// only 5xx), and no retry would help.
				level = slog.LevelError
			case ReasonBusy:
				level = slog.LevelWarn
			}
			log.Log(r.Context(), level, "request refused", "code", c, "reason", why, "err", msg, "problems", len(problems), "remote", r.RemoteAddr)
		}
		tooLarge := func(size string) {
			refuse(http.StatusRequestEntityTooLarge, ReasonTooLarge, fmt.Sprintf("body %s is over the limit of %d bytes: "+
				"its events are lost (raise max_body_bytes, or for Alertmanager set max_alerts in the webhook_config: a truncated group is taken, its truncation reported)", size, maxBody))
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			refuse(http.StatusMethodNotAllowed, ReasonMethod, "method "+r.Method+" not allowed; use POST")
			return
		}
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="causeway", Basic realm="causeway"`)
			refuse(http.StatusUnauthorized, ReasonAuth, "missing or wrong credentials")
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			refuse(http.StatusUnsupportedMediaType, ReasonContentType, fmt.Sprintf("content type %q is not application/json", r.Header.Get("Content-Type")))
			return
		}
		if ce := contentCoding(r.Header); ce != "" {
			w.Header().Set("Accept-Encoding", "identity")
			refuse(http.StatusUnsupportedMediaType, ReasonEncoding, fmt.Sprintf("content encoding %q is not supported; send the body uncompressed", ce))
			return
		}
		if r.ContentLength > maxBody {
			tooLarge(fmt.Sprintf("of %d bytes", r.ContentLength))
			return
		}
		// The body is held from here until the answer: it counts against
		// max_inflight_bytes, whole at once when its length is given,
		// else by what is read of it as it is read. (Counted as large as
		// it may be, a few small chunked bodies held the whole budget,
		// and every other request got 503 meanwhile.)
		var held int64
		defer func() {
			s.bodies.give(held)
			s.inflight.Sub(float64(held))
		}()
		hold := func(n int64) bool {
			if !s.bodies.take(n) {
				return false
			}
			held += n
			s.inflight.Add(float64(n))
			return true
		}
		busy := func() {
			s.setRetryAfter(w)
			refuse(http.StatusServiceUnavailable, ReasonBusy, fmt.Sprintf("busy: the bodies being taken fill max_inflight_bytes (%d); retry later", s.cfg.MaxInflightBytes))
		}
		var src io.Reader = http.MaxBytesReader(w, r.Body, maxBody)
		if r.ContentLength >= 0 {
			if !hold(r.ContentLength) {
				busy()
				return
			}
		} else {
			src = &heldReader{r: src, hold: hold}
		}
		body, err := io.ReadAll(src)
		if err != nil {
			if errors.Is(err, errBudgetFull) {
				busy()
				return
			}
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				tooLarge("without Content-Length")
				return
			}
			refuse(http.StatusBadRequest, ReasonBadInput, "read body: "+err.Error())
			return
		}
		evs, err := ep.Decoder.Decode(body)
		// Only a *Refused itself is a partial refusal: one wrapped in
		// another error is that error.
		partial, _ = err.(*Refused)
		if partial != nil && len(evs) > 0 {
			err = nil
		} else {
			partial = nil
		}
		if err == nil {
			err = validate(evs)
		}
		if err != nil {
			refuse(http.StatusBadRequest, ReasonBadInput, "invalid "+ep.Name+" payload", problemsOf(err)...)
			return
		}
		if n := event.ClampFuture(evs, s.deps.Now().Add(s.cfg.MaxClockSkew)); n > 0 {
			s.clamped.WithLabelValues(ep.Name).Add(float64(n))
			if since, ok := s.futureLog.Allow(s.deps.Now(), int64(n)); ok {
				log.Warn("events dated in the future taken as dated now plus max_clock_skew: the sender's clock is ahead (logged at most once a minute)",
					"events", since, "max_clock_skew", s.cfg.MaxClockSkew, "remote", r.RemoteAddr)
			}
		}
		var out published
		if len(evs) > 0 {
			var err error
			func() {
				// Ended on every path: after a panic the handler recovers
				// from, an operation left in flight would make the server
				// stuck for good.
				defer s.publishing.Begin()()
				out, err = s.publish(r.Context(), ep, evs, partial)
			}()
			evs, partial = out.evs, out.partial
			if err != nil {
				// The publisher encodes every event before it spools any:
				// one that cannot be encoded refuses the request whole.
				switch {
				case errors.Is(err, event.ErrTooLarge):
					refuse(http.StatusRequestEntityTooLarge, ReasonTooLarge, "an event is too large once encoded", problemsOf(err)...)
					return
				case errors.Is(err, event.ErrInvalid):
					refuse(http.StatusBadRequest, ReasonBadInput, "invalid "+ep.Name+" payload", problemsOf(err)...)
					return
				}
				s.setRetryAfter(w)
				if errors.Is(err, bus.ErrSpoolFull) {
					refuse(http.StatusServiceUnavailable, ReasonSpoolFull, "spool full: the broker is unavailable; retry later")
					return
				}
				log.Error("publish failed", "err", err, "events", len(evs))
				refuse(http.StatusServiceUnavailable, ReasonPublish, "events could not be stored; retry later")
				return
			}
		}
		s.accepted.WithLabelValues(ep.Name).Add(float64(len(evs)))
		code = http.StatusOK
		ack := Accepted{Accepted: len(evs), Shortened: out.shortened}
		if out.shortened > 0 {
			s.shortened.WithLabelValues(ep.Name).Add(float64(out.shortened))
			log.Warn("events too large once encoded taken shortened", "shortened", out.shortened, "remote", r.RemoteAddr)
		}
		if len(out.dead) > 0 {
			s.deadLettered.WithLabelValues(ep.Name).Add(float64(len(out.dead)))
			for _, d := range out.dead {
				ack.DeadLettered = append(ack.DeadLettered, d.Reason)
			}
			log.Error("events too large to take dead-lettered", "dead_lettered", len(out.dead), "problems", ack.DeadLettered, "remote", r.RemoteAddr)
		}
		if partial != nil {
			reason, ack.Refused = ReasonPartial, problemsOf(partial)
			log.Warn("request taken in part", "accepted", len(evs), "refused", len(ack.Refused), "problems", ack.Refused, "remote", r.RemoteAddr)
		}
		s.writeJSON(w, code, ack)
		log.Debug("request accepted", "events", len(evs))
	})
}

// setRetryAfter sets the Retry-After of a 503 to retry_after, in whole
// seconds rounded up: "0" would ask for a retry at once.
func (s *Server) setRetryAfter(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
}

// published is what publish took of a request.
type published struct {
	evs       []event.Event // published (shortened ones included)
	shortened int           // of evs, made to fit by Endpoint.Shorten
	dead      []bus.DeadEvent
	partial   *Refused
}

// publish publishes evs. For an endpoint that takes requests in part,
// each event is first given to ep.Shorten, and the events the publisher
// refuses for good are kept out of the log (the publisher spools nothing
// of a call it refuses): one too large once encoded is dead-lettered with
// the reason (by a DeadLetterPublisher, else added to partial's
// refusals); an invalid one is added to partial's refusals. The rest is
// published with the dead letters in one call. The events are encoded
// once more to find every refused one, so a request costs two publish
// calls at most, however many it holds.
func (s *Server) publish(ctx context.Context, ep Endpoint, evs []event.Event, partial *Refused) (published, error) {
	out := published{evs: evs, partial: partial}
	var unfit map[int]error // why an event over its bound could not be made to fit
	if ep.InPart && ep.Shorten != nil {
		out.evs = make([]event.Event, len(evs))
		for i, ev := range evs {
			short, cut, err := ep.Shorten(ev)
			if err == nil && cut && short.EventID != ev.EventID {
				err = fmt.Errorf("shortening changed its event id to %s", short.EventID)
			}
			switch {
			case err != nil:
				if unfit == nil {
					unfit = map[int]error{}
				}
				unfit[i] = err
			case cut:
				ev = short
				out.shortened++
			}
			out.evs[i] = ev
		}
		evs = out.evs
	}
	err := s.deps.Publisher.Publish(ctx, evs...)
	bad := (*event.ItemError)(nil)
	if err == nil || !ep.InPart || !errors.As(err, &bad) || !(errors.Is(err, event.ErrTooLarge) || errors.Is(err, event.ErrInvalid)) {
		return out, err
	}
	dl, _ := s.deps.Publisher.(DeadLetterPublisher)
	var keep []event.Event
	var refused []error
	for i, ev := range evs {
		_, eerr := event.Encode(ev)
		if eerr == nil {
			keep = append(keep, ev)
			continue
		}
		why := eerr
		if serr := unfit[i]; serr != nil && errors.Is(eerr, event.ErrTooLarge) {
			why = fmt.Errorf("%w; and it cannot be shortened: %w", eerr, serr)
		}
		if errors.Is(eerr, event.ErrTooLarge) && dl != nil {
			reason := fmt.Sprintf("%s event %s too large to take: %v", ep.Name, ev.EventID, why)
			out.dead = append(out.dead, bus.DeadEvent{Event: ev, Reason: reason})
			continue
		}
		refused = append(refused, &event.ItemError{Index: i, EventID: ev.EventID, Err: why})
	}
	if len(keep)+len(out.dead) == 0 || len(refused)+len(out.dead) == 0 {
		return out, err // nothing left to take (refused whole), or not an encoding matter
	}
	if len(refused) > 0 {
		if out.partial == nil {
			out.partial = &Refused{}
		}
		out.partial.Errs = append(out.partial.Errs, refused...)
	}
	out.evs = keep
	if len(out.dead) > 0 {
		return out, dl.PublishOrDeadLetter(ctx, keep, out.dead)
	}
	return out, s.deps.Publisher.Publish(ctx, keep...)
}

// contentCoding is the Content-Encoding of a request, unless it is none
// (or identity). The body is not decoded: a compressed one is refused
// (415) rather than read as JSON, which would blame its content, and no
// decompression bomb needs guarding against.
func contentCoding(h http.Header) string {
	vals := h.Values("Content-Encoding")
	for _, v := range vals {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return strings.Join(vals, ", ")
			}
		}
	}
	return ""
}

// validate checks every event before any is published, so a request is
// refused whole.
func validate(evs []event.Event) error {
	var errs []error
	for i, ev := range evs {
		if err := ev.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("event %d (%s %s): %w", i, ev.Kind, ev.EventID, err))
		}
	}
	return errors.Join(errs...)
}

// problems flattens joined errors into one message each.
func problemsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	if len(out) > 100 {
		out = append(out[:100], fmt.Sprintf("... and %d more", len(out)-100))
	}
	return out
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// authorized checks the bearer token or basic credentials in constant time:
// their digests are compared with the kept ones (see credentials).
// The scheme is case-insensitive (RFC 9110, 11.1): Prometheus' http_config,
// which Alertmanager's webhook_config uses, sends the configured
// authorization type as written ("bearer <token>").
func (s *Server) authorized(r *http.Request) bool {
	if s.creds.open {
		return true
	}
	h := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimLeft(tok, " ")
		found, d := 0, digest([]byte(tok))
		for _, t := range s.creds.tokens {
			found |= subtle.ConstantTimeCompare(d, t)
		}
		return found == 1
	}
	if user, pass, ok := r.BasicAuth(); ok && s.creds.user != nil {
		u := subtle.ConstantTimeCompare(digest([]byte(user)), s.creds.user)
		p := subtle.ConstantTimeCompare(digest([]byte(pass)), s.creds.password)
		return u&p == 1
	}
	return false
}
