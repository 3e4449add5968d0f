// Package api is the processor's live HTTP API, served by every processor
// node from its own graph: topology, resources, alarms, RCA (live, or at a
// past seq or time by reconstruction on a separate graph), templates,
// status, cluster membership, health, readiness and metrics.
//
// Every response carries the seq of the state it reflects (for the alarm
// history, the seq the history is written up to) and the leader this node
// knows, in the X-Causeway-Seq and X-Causeway-Leader headers and in the
// JSON body. Nothing here changes the state directly: template
// changes and events are published to the bus and come back through the
// log, like every other change (invariant 3 of DESIGN.md).
//
// Requests are authenticated with bearer tokens from the configuration,
// each with a role: reader (GET) or admin (everything). /healthz, /readyz
// and /metrics are open.
//
// Endpoints (Vitrage's v1 API is the model; ids are vitrage_ids):
//
//	GET  /v1/status                    role, leader, term, applied seq, log head, lag, snapshots, counters
//	                                   (the last error's text for admin tokens only)
//	GET  /v1/topology                  ?graph_type=graph|tree&root=&depth=&type=&category=&all= (POST: same as JSON); a tree follows
//	                                   outgoing edges of every relationship from root; a graph takes depth only with root
//	GET  /v1/resources[/count|/{id}]   ?type=&project_id=&all=&group_by=
//	GET  /v1/alarms[/count|/{id}]      ?all=&resource=&group_by=
//	                                   the lists a page at a time, ascending by vitrage_id: ?limit= (default and
//	                                   at most Config.MaxPageSize) after ?marker= (a vitrage_id), with "next",
//	                                   the marker of the next page, while more follow
//	                                   lists, counts and topology leave out deleted vertices and placeholders
//	                                   (referenced, not yet reported: vitrage_is_placeholder) unless all=true
//	GET  /v1/rca/{id}                  live, or ?seq= / ?at= (RFC 3339, now, -2h) on a reconstructed graph
//	                                   (404 "past retention", naming the earliest ?at= to ask, for a moment
//	                                   the log no longer rebuilds: PastRetention);
//	                                   the endpoints above answer live only and refuse ?at= and ?seq= (400)
//	GET  /v1/history/alarms            ?from=&to=&type=&resource=&severity=&limit=&page=: alarm history (database, no replay)
//	GET  /v1/history/stats             ?from=&to=&interval=&type=: alarms raised per interval by type and severity
//	GET  /v1/history/links             ?alarm=KEY&from=&to=&limit=&page=: periods of the causal links of one alarm, paged
//	GET  /v1/templates[/{name}]        loaded templates (live only, as the endpoints above)
//	POST /v1/templates/validate        YAML body (or JSON {"body":...,"params":{...}}, params the values of
//	                                   its parameters): problems, nothing published
//	POST /v1/templates                 admin: the same body, validated, then published as template.put (with its params)
//	DELETE /v1/templates/{name}        admin: published as template.delete
//	GET  /v1/subscriptions[/{id}]      admin: webhook subscriptions in the state (specs may carry receiver credentials)
//	                                   (each with the open alarms it follows: a count, and one's keys paged by ?following_limit=&following_after=)
//	PUT  /v1/subscriptions/{id}        admin: webhook subscription spec, validated, published as subscription.put
//	DELETE /v1/subscriptions/{id}      admin: published as subscription.delete
//	POST /v1/events                    admin: events (one or an array), published to the bus
//	GET  /v1/cluster                   raft members; POST /v1/cluster/join|remove (admin, leader only: 409 elsewhere;
//	                                   400 for a join whose address is not the raft host:port; 422 for a change
//	                                   that would leave no quorum of voters that answer, or a join at an address
//	                                   where another member is or another raft answers; 404 removing no member)
//	GET  /v1/debug/dump                admin: the canonical dump of the live state, written as rendered (one at a time)
//	GET  /healthz, /readyz, /metrics   healthz: 503 while the node is stuck (Deps.Alive);
//	                                   readyz: 200 when a leader is known and the node is caught up
//
// The lists, counts and topology walk the whole live graph while holding
// it for reading, which holds back the application of the log: at most
// Config.MaxGraphReads of them run at once (graphRead). The history's
// queries share the processor's connections to the database with event
// processing and the leader's duties: at most Config.MaxHistoryQueries of
// them run at once (historyQuery). A slot covers the work, not the write
// of the answer: that is kept in memory (Config.MaxUnsentBytes) and
// written once the slot is free, so a slow client holds none. The
// historical RCAs are bounded by the Backend (ErrBusy), each until its
// answer is computed from the graph it rebuilt (Past.Release).
//
// Stopping (Server.Drain, from the start of the node's stop until its
// listener closes, after raft and everything else has stopped): /metrics
// answers as ever, so the drain is seen by the scrapes; /healthz answers 200
// "stopping" (the process is alive and on its way out: a liveness probe must
// not kill it mid-drain, and a stop that hangs is the service manager's to
// end); /readyz answers 503 with "stopping": true, so that a load balancer
// takes the node out; every /v1 route answers 503 "stopping" with
// Retry-After and Connection: close (after the token check, as ever), so
// that a client retries on another node rather than read a state that has
// stopped following the log, or have a write taken by a node that is going.
// The requests in flight when the stop began are finished first.
//
// An error is answered with its message in the body's "error", but for a
// 500: a failure of the server's own, whose message (a database's names
// its tables, columns and hosts) is no reader's business. A 500 says only
// that the request failed, with a request id ("request_id", and in the
// message), and the node logs the error in full with that id. So does a
// 503 for a dependency that failed (the event log's or the history's
// database, the bus, raft): it says only what is unavailable ("alarm
// history database unavailable"), with a request id, and the node logs
// the cause as a warning. The other 503s keep their message, which holds
// nothing of a dependency's: busy (a slot limit, naming its key),
// stopping, the state not loaded yet.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/causeway/causeway/internal/tlsfile"
)

// Header names.
const (
	HeaderSeq    = "X-Causeway-Seq"
	HeaderLeader = "X-Causeway-Leader"
	HeaderNode   = "X-Causeway-Node"
)

// Roles.
const (
	RoleReader = "reader"
	RoleAdmin  = "admin"
)

// ErrNotLeader is what Backend.Join/Remove wrap when this node cannot
// change the membership; the API answers 409 with the leader's id.
var ErrNotLeader = errors.New("not the leader")

// ErrRefused is what Backend.Join/Remove wrap for a change the leader
// refuses for what it would do (the configuration it makes would have no
// quorum of voters that answer, or would count a server under an id that
// is not its own); the API answers 422 with the reason.
var ErrRefused = errors.New("membership change refused")

// ErrNotFound is what Backend methods wrap for an unknown seq or time.
var ErrNotFound = errors.New("not found")

// ErrBusy is what Backend.Reconstruct wraps when as many historical
// queries as the node allows are running; the API answers 503 with
// Retry-After.
var ErrBusy = errors.New("busy")

// PastRetention is what Backend.Reconstruct returns for a moment the event
// log no longer rebuilds: retention dropped events its state is rebuilt
// from (or the log misses them). It is a not found (errors.Is ErrNotFound);
// the API answers 404 saying so, with the oldest stored event and the
// earliest moment that can be asked instead, rather than the
// reconstruction's chain of errors.
type PastRetention struct {
	// OldestSeq and OldestAt are the oldest event the log stores (the
	// head's when retention dropped every one); OldestSeq 0: not known.
	OldestSeq int64
	OldestAt  time.Time
	// Earliest is the first moment the retained log rebuilds: the time of
	// the oldest snapshot it follows (zero: none, or not known).
	Earliest time.Time
	// Err is the reconstruction's error.
	Err error
}

func (e *PastRetention) Error() string { return "past retention: " + e.Err.Error() }

// Unwrap makes a PastRetention a not found, and keeps its cause.
func (e *PastRetention) Unwrap() []error { return []error{ErrNotFound, e.Err} }

// explain says, for an answer, what the log keeps and what to ask.
func (e *PastRetention) explain() string {
	msg := "past retention: the event log no longer holds the events that state is rebuilt from"
	if e.OldestSeq > 0 {
		msg += fmt.Sprintf(" (oldest stored event: seq %d, recorded at %s)", e.OldestSeq, e.OldestAt.UTC().Format(time.RFC3339Nano))
	}
	if !e.Earliest.IsZero() {
		return msg + "; the earliest moment it rebuilds: ?at=" + e.Earliest.UTC().Format(time.RFC3339Nano)
	}
	return msg + "; no snapshot the retained log follows is kept, so no moment of it can be rebuilt"
}

// ErrUnavailable is what Backend.Reconstruct and HistoryReader methods
// wrap for a failure that may pass (the database unreachable or
// restarting, a connection lost, a deadline); the API answers 503 with
// Retry-After, as for ErrBusy. Other failures are 500s.
var ErrUnavailable = errors.New("unavailable")

// retryable reports whether a historical query's failure may pass.
func retryable(err error) bool {
	return errors.Is(err, ErrBusy) || errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 2 << 20

// Token is one bearer token and its role. Exactly one of Token and
// TokenFile is set.
type Token struct {
	Name      string `yaml:"name"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	Role      string `yaml:"role"`
}

// String redacts the secret.
func (t Token) String() string {
	return fmt.Sprintf("{name:%s role:%s token:<redacted> token_file:%s}", t.Name, t.Role, t.TokenFile)
}

// Config configures the API server.
type Config struct {
	// Listen is the TCP address to serve on (host:port).
	Listen string `yaml:"listen"`
	// Tokens are the accepted bearer tokens.
	Tokens []Token `yaml:"tokens"`
	// ShutdownGrace bounds the wait for requests in flight at shutdown
	// (default DefaultShutdownGrace).
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MaxGraphReads bounds the live reads whose work grows with the whole
	// graph (lists, counts, topology) running at once (default
	// DefaultMaxGraphReads). Each holds the node's state for reading
	// while it walks it, which holds back the application of the log
	// (and every read after a waiting apply), and takes memory in
	// proportion to the graph for its answer. One over the bound waits
	// a few seconds for a slot, then gets 503 with Retry-After.
	MaxGraphReads int `yaml:"max_graph_reads"`
	// MaxHistoryQueries bounds the alarm history's queries (GET
	// /v1/history/...) running at once (default
	// DefaultMaxHistoryQueries). They read the database through the
	// processor's pool of connections, which the follower's catch-up, the
	// leader's fenced writes, the snapshots and the presence row share.
	// One over the bound waits a few seconds for a slot, then gets 503
	// with Retry-After.
	MaxHistoryQueries int `yaml:"max_history_queries"`
	// MaxUnsentBytes bounds the answers of those bounded reads that are
	// computed and wait for their clients to take them (default
	// DefaultMaxUnsentBytes). A read's slot covers its work (the walk of
	// the graph, the query, the encoding of the answer), not the write
	// of the answer, which a slow or stalled client may stretch to the
	// server's write timeout: the answer is kept in memory and written
	// once the slot is free. An answer that would take the answers kept
	// so over this bound is written holding its slot instead, as a
	// stalled client then holds back the reads of its kind rather than
	// the node's memory.
	MaxUnsentBytes int64 `yaml:"max_unsent_bytes"`
	// TLS serves HTTPS; unset, plain HTTP, whose bearer tokens cross the
	// network in clear (a warning says so when Listen is past loopback).
	TLS TLS `yaml:"tls"`
	// MaxPageSize bounds the page of a resource or alarm list (GET
	// /v1/resources, /v1/alarms; default DefaultMaxPageSize): a request
	// without ?limit= is answered its first page of this many, a larger
	// ?limit= this many, each with the marker of the next page.
	MaxPageSize int `yaml:"max_page_size"`
}

// TLS is the API's certificate, and the authorities of its clients'
// certificates for mutual TLS. The files are read again when they change
// (a renewal), see internal/tlsfile.
type TLS struct {
	// CertFile (PEM, the intermediates after the certificate) and
	// KeyFile, its private key (a secret): both, or none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, is the PEM bundle of the authorities whose
	// certificates the clients must present (mutual TLS), besides their
	// bearer token.
	ClientCAFile string `yaml:"client_ca_file"`
}

// load is the server's TLS configuration; nil when none is set.
func (t TLS) load(o tlsfile.Options) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	pair, err := tlsfile.LoadPair(t.CertFile, t.KeyFile, o)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{GetCertificate: pair.GetCertificate, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile == "" {
		return c, nil
	}
	pool, err := tlsfile.LoadPool(t.ClientCAFile, o)
	if err != nil {
		return nil, fmt.Errorf("tls.client_ca_file: %w", err)
	}
	// Each handshake takes the bundle as it is now (a renewed one).
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{
			GetCertificate: pair.GetCertificate, MinVersion: tls.VersionTLS12,
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool.CertPool(),
		}, nil
	}
	return c, nil
}

func (t TLS) validate() error {
	var errs []error
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("tls: set cert_file and key_file, or none"))
	}
	if t.ClientCAFile != "" && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("tls.client_ca_file: needs cert_file and key_file"))
	}
	return errors.Join(errs...)
}

// DefaultShutdownGrace is Config.ShutdownGrace's default.
const DefaultShutdownGrace = 5 * time.Second

// DefaultMaxGraphReads is Config.MaxGraphReads's default.
const DefaultMaxGraphReads = 2

// DefaultMaxHistoryQueries is Config.MaxHistoryQueries's default: a
// quarter of the processor's connections to the database.
const DefaultMaxHistoryQueries = 4

// DefaultMaxUnsentBytes is Config.MaxUnsentBytes's default.
const DefaultMaxUnsentBytes = 256 << 20

// DefaultMaxPageSize is Config.MaxPageSize's default.
const DefaultMaxPageSize = 1000

// slotWait is how long a bounded request waits for a slot.
const slotWait = 5 * time.Second

// Validate reports every problem of c, naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port", c.Listen))
	}
	if len(c.Tokens) == 0 {
		errs = append(errs, errors.New("tokens: at least one token is required"))
	}
	for i, t := range c.Tokens {
		if (t.Token == "") == (t.TokenFile == "") {
			errs = append(errs, fmt.Errorf("tokens[%d]: set exactly one of token and token_file", i))
		}
		if t.Role != RoleReader && t.Role != RoleAdmin {
			errs = append(errs, fmt.Errorf("tokens[%d].role: %q is not reader or admin", i, t.Role))
		}
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("shutdown_grace: must not be negative"))
	}
	if c.MaxGraphReads < 0 {
		errs = append(errs, errors.New("max_graph_reads: must not be negative (0: the default)"))
	}
	if c.MaxHistoryQueries < 0 {
		errs = append(errs, errors.New("max_history_queries: must not be negative (0: the default)"))
	}
	if c.MaxUnsentBytes < 0 {
		errs = append(errs, errors.New("max_unsent_bytes: must not be negative (0: the default)"))
	}
	if c.MaxPageSize < 0 {
		errs = append(errs, errors.New("max_page_size: must not be negative (0: the default)"))
	}
	errs = append(errs, c.TLS.validate())
	return errors.Join(errs...)
}

// Deps are the server's collaborators.
type Deps struct {
	Logger *slog.Logger
	// Registerer registers the server's metrics; nil registers them
	// nowhere.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil serves prometheus.DefaultGatherer's
	// empty equivalent (a fresh registry).
	Gatherer prometheus.Gatherer
	// Now stamps events the API publishes, and times the looks at
	// renewed TLS files; default time.Now.
	Now func() time.Time
	// NodeID names this node in responses.
	NodeID string
	// History serves GET /v1/history/...; nil answers them 501.
	History HistoryReader
	// Alive reports whether the node is not stuck (what the systemd
	// watchdog is told); /healthz answers 503 while it says no. nil:
	// always alive.
	Alive func() bool
}

// Server serves the API.
type Server struct {
	cfg     Config
	b       Backend
	history HistoryReader // nil: none
	alive   func() bool
	log     *slog.Logger
	now     func() time.Time
	node    string
	tokens  map[[32]byte]string // sha256(token) -> role
	tls     *tls.Config         // nil: plain HTTP
	handler http.Handler
	// graphReads and historyQueries hold a slot per read of the whole
	// graph and per history query running (bounded); slotWait is how long
	// one waits for a slot.
	graphReads, historyQueries slots
	// dumps holds the slot of the one dump written at a time.
	dumps    slots
	slotWait time.Duration
	// unsent is the size of the bounded reads' answers computed and not
	// yet written, kept within cfg.MaxUnsentBytes (bounded).
	unsent atomic.Int64
	// mHeld counts the answers written holding their slot (bounded), by
	// kind of slot.
	mHeld *prometheus.CounterVec

	// mu orders the stop against the routes' requests: a request enters
	// (inflight.Add) under the read lock only while stopping is false,
	// and Drain sets it under the write lock, so no request enters after
	// Drain began waiting for those in flight.
	mu       sync.RWMutex
	stopping bool
	inflight sync.WaitGroup
	// cut ends the contexts of the routes' requests still in flight when
	// Drain's grace has passed.
	cut     context.Context
	cutWork context.CancelFunc
}

// New validates cfg, reads token files and builds the handler. It starts
// nothing.
func New(cfg Config, b Backend, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	if b == nil {
		return nil, errors.New("api: nil backend")
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.MaxGraphReads == 0 {
		cfg.MaxGraphReads = DefaultMaxGraphReads
	}
	if cfg.MaxHistoryQueries == 0 {
		cfg.MaxHistoryQueries = DefaultMaxHistoryQueries
	}
	if cfg.MaxUnsentBytes == 0 {
		cfg.MaxUnsentBytes = DefaultMaxUnsentBytes
	}
	if cfg.MaxPageSize == 0 {
		cfg.MaxPageSize = DefaultMaxPageSize
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Gatherer == nil {
		deps.Gatherer = prometheus.NewRegistry()
	}
	if deps.Alive == nil {
		deps.Alive = func() bool { return true }
	}
	s := &Server{cfg: cfg, b: b, history: deps.History, alive: deps.Alive, log: deps.Logger.With("component", "api"), now: deps.Now, node: deps.NodeID, tokens: map[[32]byte]string{},
		graphReads:     slots{make(chan struct{}, cfg.MaxGraphReads), "reads of the whole graph", "processor.api.max_graph_reads", "graph_reads"},
		historyQueries: slots{make(chan struct{}, cfg.MaxHistoryQueries), "history queries", "processor.api.max_history_queries", "history_queries"},
		dumps:          slots{make(chan struct{}, 1), "dumps", "one at a time", "dumps"},
		slotWait:       slotWait,
		mHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_processor_api_answers_written_holding_slot_total",
			Help: "Answers of bounded reads written holding their slot, as they were larger than processor.api.max_unsent_bytes left.",
		}, []string{"slots"})}
	for _, sl := range []slots{s.graphReads, s.historyQueries} {
		s.mHeld.WithLabelValues(sl.label) // shown at 0
	}
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(s.mHeld); err != nil {
			return nil, fmt.Errorf("register api metrics: %w", err)
		}
	}
	s.cut, s.cutWork = context.WithCancel(context.Background())
	for i, t := range cfg.Tokens {
		secret := t.Token
		if t.TokenFile != "" {
			raw, err := os.ReadFile(t.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("api config: tokens[%d].token_file: %w", i, err)
			}
			secret = strings.TrimSpace(string(raw))
			if secret == "" {
				return nil, fmt.Errorf("api config: tokens[%d].token_file: %s is empty", i, t.TokenFile)
			}
		}
		sum := sha256.Sum256([]byte(secret))
		if role, dup := s.tokens[sum]; dup && role != t.Role {
			return nil, fmt.Errorf("api config: tokens[%d] has the secret of an earlier token with role %s", i, role)
		}
		s.tokens[sum] = t.Role
	}
	tlsConf, err := cfg.TLS.load(tlsfile.Options{Logger: s.log, Now: deps.Now, Key: "processor.api.tls"})
	if err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	s.tls = tlsConf
	s.handler = s.routes(promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{}))
	return s, nil
}

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on cfg.Listen until ctx ends, then shuts down gracefully and
// returns nil.
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Listen opens the listener on cfg.Listen, for Serve.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen api on %s: %w", s.cfg.Listen, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends (ln is closed then), waiting
// ShutdownGrace at most for the requests in flight. To stop taking work
// while the listener stays open, call Drain first.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// A body takes at most ReadTimeout to arrive; an answer (a
		// historical query rebuilds a graph, a dump can be large) at most
		// WriteTimeout; a kept-alive connection idles IdleTimeout.
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 2 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:    s.tls,
	}
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- srv.ServeTLS(ln, "", "") // the key pair is in TLSConfig
			return
		}
		errc <- srv.Serve(ln)
	}()
	s.log.Info("api serving", "addr", ln.Addr().String(), "tls", s.tls != nil)
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() && s.tls == nil {
		s.log.Warn("api listens past loopback without TLS: its bearer tokens (an admin's change the rules and the membership) and answers cross the network in clear; set processor.api.tls, or keep it on a network of trusted hosts",
			"addr", ln.Addr().String(), "key", "processor.api.listen")
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// Drain begins the stop (see the package comment): from now on /readyz
// answers 503 "stopping", /healthz 200 "stopping", and the /v1 routes 503
// "stopping"; /metrics is unchanged. It returns once the requests of the
// /v1 routes in flight have ended, or, when ShutdownGrace has passed
// first, once their contexts are cancelled (without waiting for them any
// more). The listener stays open until Serve's ctx ends.
func (s *Server) Drain() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.ShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("requests still in flight when the shutdown grace passed: cancelled", "grace", s.cfg.ShutdownGrace)
		s.cutWork()
	}
}

// isStopping reports whether Drain was called.
func (s *Server) isStopping() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stopping
}

// errStopping is the answer of the /v1 routes once the stop has begun.
var errStopping = errors.New("stopping: this node is shutting down; send the request to another node")

// work serves h unless the stop has begun (503 "stopping"), counting
// the request in flight for Drain, which may cancel its context.
func (s *Server) work(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		if s.stopping {
			s.mu.RUnlock()
			// The client's next request, on a new connection, may reach
			// another node behind the same address.
			w.Header().Set("Connection", "close")
			s.fail(w, http.StatusServiceUnavailable, 0, errStopping)
			return
		}
		s.inflight.Add(1)
		s.mu.RUnlock()
		defer s.inflight.Done()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.cut, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) routes(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.isStopping() {
			// Alive, on its way out: the follow loop has ended, so its
			// stall says nothing now.
			_, _ = w.Write([]byte("stopping\n"))
			return
		}
		if !s.alive() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("stuck: the follow loop has not turned within the stall limit\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", metrics)

	read := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.auth(RoleReader, s.work(h))) }
	admin := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.auth(RoleAdmin, s.work(h))) }

	read("GET /v1/status", s.status)
	read("GET /v1/topology", s.liveOnly(s.graphRead(s.topology)))
	read("POST /v1/topology", s.liveOnly(s.graphRead(s.topology)))
	read("GET /v1/resources", s.liveOnly(s.graphRead(s.resourceList)))
	read("GET /v1/resources/count", s.liveOnly(s.graphRead(s.resourceCount)))
	read("GET /v1/resources/{id}", s.liveOnly(s.resourceShow))
	read("GET /v1/alarms", s.liveOnly(s.graphRead(s.alarmList)))
	read("GET /v1/alarms/count", s.liveOnly(s.graphRead(s.alarmCount)))
	read("GET /v1/alarms/{id}", s.liveOnly(s.alarmShow))
	read("GET /v1/rca/{id}", s.rca)
	read("GET /v1/history/alarms", s.historyQuery(s.alarmHistory))
	read("GET /v1/history/stats", s.historyQuery(s.alarmStats))
	read("GET /v1/history/links", s.historyQuery(s.alarmLinks))
	read("GET /v1/templates", s.liveOnly(s.templateList))
	read("GET /v1/templates/{name}", s.liveOnly(s.templateShow))
	read("POST /v1/templates/validate", s.templateValidate)
	admin("POST /v1/templates", s.templateAdd)
	admin("DELETE /v1/templates/{name}", s.templateDelete)
	admin("GET /v1/subscriptions", s.liveOnly(s.subscriptionList))
	admin("GET /v1/subscriptions/{id}", s.liveOnly(s.subscriptionShow))
	admin("PUT /v1/subscriptions/{id}", s.subscriptionPut)
	admin("DELETE /v1/subscriptions/{id}", s.subscriptionDelete)
	admin("POST /v1/events", s.events)
	read("GET /v1/cluster", s.cluster)
	admin("POST /v1/cluster/join", s.clusterJoin)
	admin("POST /v1/cluster/remove", s.clusterRemove)
	admin("GET /v1/debug/dump", s.dump)
	return s.unrouted(mux)
}

// openPatterns are the routes served without a token.
var openPatterns = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// unrouted answers what mux has no pattern for (a path it does not serve:
// 404; a method the path does not take: 405, with the mux's Allow), and a
// path it would clean first (double slashes, dot segments: a 307 to the
// clean path, with its Location), as every other error is answered, in
// JSON with the seq and leader, rather than with the mux's plain text or
// HTML. Without a reader's token it is 401, as on a path served: which
// paths exist is not told to anyone (the mux's redirect would name the
// clean path of a route to anyone). An open route's unclean path is
// redirected as the mux does.
func (s *Server) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" && (openPatterns[pattern] || !unclean(r)) {
			mux.ServeHTTP(w, r)
			return
		}
		s.auth(RoleReader, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The mux's own answer says which it is.
			rec := &statusOnly{header: http.Header{}, code: http.StatusNotFound}
			h.ServeHTTP(rec, r)
			err := fmt.Errorf("%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(rec.code)))
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
				err = fmt.Errorf("%w (allowed: %s)", err, allow)
			}
			if loc := rec.header.Get("Location"); loc != "" {
				w.Header().Set("Location", loc)
				err = fmt.Errorf("%w (the clean path: %s)", err, loc)
			}
			s.fail(w, rec.code, 0, err)
		})).ServeHTTP(w, r)
	})
}

// unclean reports whether the mux would redirect r to its clean path
// rather than serve it (net/http's cleanPath over the escaped path; CONNECT
// is not cleaned). The mux's other redirect, /tree to /tree/, needs a
// pattern ending in a slash, and none does here.
func unclean(r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return false
	}
	p := r.URL.EscapedPath()
	if p == "" || p[0] != '/' {
		return true
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np != p
}

// statusOnly is a ResponseWriter that keeps the status and headers of an
// answer and drops its body.
type statusOnly struct {
	header  http.Header
	code    int
	written bool
}

func (w *statusOnly) Header() http.Header { return w.header }
func (w *statusOnly) WriteHeader(code int) {
	if !w.written {
		w.code, w.written = code, true
	}
}
func (w *statusOnly) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

// slots bounds a kind of request running at once (bounded).
type slots struct {
	c         chan struct{}
	what, key string // what runs, and the YAML key of the bound
	label     string // the metrics' label value
}

// graphRead serves h, a read whose work grows with the whole live graph
// (a list, a count, a topology), in one of Config.MaxGraphReads slots: it
// holds the node's state for reading while it walks it (which holds back
// the application of the log, and every read after a waiting apply) and
// builds an answer in proportion to the graph.
func (s *Server) graphRead(h http.HandlerFunc) http.HandlerFunc { return s.bounded(s.graphReads, h) }

// historyQuery serves h, a query of the alarm history, in one of
// Config.MaxHistoryQueries slots: it holds one of the connections to the
// database that event processing and the leader's duties share.
func (s *Server) historyQuery(h http.HandlerFunc) http.HandlerFunc {
	return s.bounded(s.historyQueries, h)
}

// bounded serves h in one of sl's slots. One that finds no slot free
// within slotWait is answered 503 busy, with Retry-After. The request's
// body (at most MaxBodyBytes) is read first, and h's answer is kept in
// memory and written once the slot is free (within MaxUnsentBytes of
// answers kept so, else holding the slot): neither a body trickled in nor
// a client that reads its answer slowly, or not at all, holds a slot.
func (s *Server) bounded(sl slots, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
			if err != nil {
				s.fail(w, bodyStatus(err), 0, fmt.Errorf("read request body: %w", err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(raw))
		}
		if !s.take(w, r, sl) {
			return
		}
		var once sync.Once
		release := func() { once.Do(func() { <-sl.c }) }
		defer release()
		ans := &keptAnswer{header: w.Header()}
		h(ans, r)
		n := int64(ans.body.Len())
		if s.unsent.Add(n) > s.cfg.MaxUnsentBytes {
			s.unsent.Add(-n)
			s.mHeld.WithLabelValues(sl.label).Inc()
			s.log.Warn("answer written holding its slot: the answers waiting for their clients are over the bound",
				"bytes", n, "bound", s.cfg.MaxUnsentBytes, "key", "processor.api.max_unsent_bytes", "slots", sl.key)
		} else {
			defer s.unsent.Add(-n)
			release()
		}
		ans.send(w)
	}
}

// take takes one of sl's slots, waiting slotWait at most; it answers
// 503 busy, with Retry-After, and reports false when none frees.
func (s *Server) take(w http.ResponseWriter, r *http.Request, sl slots) bool {
	select {
	case sl.c <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(s.slotWait)
	defer t.Stop()
	select {
	case sl.c <- struct{}{}:
		return true
	case <-t.C:
		s.fail(w, http.StatusServiceUnavailable, 0, fmt.Errorf("%w: %d %s are running (%s); retry later", ErrBusy, cap(sl.c), sl.what, sl.key))
	case <-r.Context().Done():
		s.fail(w, http.StatusServiceUnavailable, 0, fmt.Errorf("waiting for one of the %d %s running: %w", cap(sl.c), sl.what, r.Context().Err()))
	}
	return false
}

// keptAnswer is a ResponseWriter that keeps the answer in memory, for
// send to write it later. Its headers are the real writer's, not sent
// before send. The body is kept in pieces as written (WriteJSON writes
// an answer a piece at a time), not copied into one buffer that doubles
// as it grows.
type keptAnswer struct {
	header http.Header
	code   int
	body   pieces
}

func (a *keptAnswer) Header() http.Header { return a.header }
func (a *keptAnswer) WriteHeader(code int) {
	if a.code == 0 {
		a.code = code
	}
}
func (a *keptAnswer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(p)
}

// send writes the kept answer to w, with its length.
func (a *keptAnswer) send(w http.ResponseWriter) {
	if a.code == 0 {
		a.code = http.StatusOK
	}
	w.Header().Set("Content-Length", strconv.Itoa(a.body.Len()))
	w.WriteHeader(a.code)
	_, _ = a.body.WriteTo(w)
}

// pieceSize is the size of the pieces that pieces keeps.
const pieceSize = 64 << 10

// pieces is a buffer kept in pieces of pieceSize bytes (a Write larger
// than one: a piece of its own), so that growing it copies nothing.
type pieces struct {
	bufs [][]byte
	n    int
}

func (b *pieces) Write(p []byte) (int, error) {
	n := len(p)
	b.n += n
	for len(p) > 0 {
		last := len(b.bufs) - 1
		if last < 0 || len(b.bufs[last]) == cap(b.bufs[last]) {
			b.bufs = append(b.bufs, make([]byte, 0, max(pieceSize, min(len(p), 1<<30))))
			last++
		}
		k := min(len(p), cap(b.bufs[last])-len(b.bufs[last]))
		b.bufs[last] = append(b.bufs[last], p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// Len is the number of bytes written.
func (b *pieces) Len() int { return b.n }

// WriteTo writes the pieces to w in order.
func (b *pieces) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, p := range b.bufs {
		k, err := w.Write(p)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// liveOnly refuses ?at= and ?seq= on an endpoint that answers from the
// live state only (graph, templates, subscriptions), rather than answer a
// question about the past with the present.
func (s *Server) liveOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for _, p := range []string{"at", "seq"} {
			if q.Has(p) {
				s.fail(w, http.StatusBadRequest, 0, fmt.Errorf("%s: %s answers from the live state only; the past is answered by GET /v1/rca/{id}?%s= (and, from the database, causeway topology show or replay --%s)",
					p, r.URL.Path, p, p))
				return
			}
		}
		h(w, r)
	}
}

// auth admits a request whose bearer token has role need (admin includes
// reader).
func (s *Server) auth(need string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r.Header.Get("Authorization"))
		role := ""
		if ok {
			sum := sha256.Sum256([]byte(tok))
			// Compare against every known hash in constant time per entry.
			for h, rl := range s.tokens {
				if subtle.ConstantTimeCompare(h[:], sum[:]) == 1 {
					role = rl
				}
			}
		}
		switch {
		case role == "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="causeway"`)
			s.fail(w, http.StatusUnauthorized, 0, errors.New("missing or unknown bearer token"))
		case need == RoleAdmin && role != RoleAdmin:
			s.fail(w, http.StatusForbidden, 0, errors.New("this needs an admin token"))
		default:
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
		}
	})
}

// roleKey is the context key of the role auth admitted a request with.
type roleKey struct{}

// isAdmin reports whether auth admitted r with an admin token.
func isAdmin(r *http.Request) bool {
	role, _ := r.Context().Value(roleKey{}).(string)
	return role == RoleAdmin
}

// bearer returns the token of an Authorization header of the Bearer
// scheme, whose name is case-insensitive (RFC 9110, 11.1).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (s *Server) meta(seq int64) Meta {
	st := s.b.Status(context.Background())
	if seq < 0 {
		seq = st.AppliedSeq
	}
	return Meta{Seq: seq, Leader: st.Leader, Node: s.node}
}

// reply writes v as JSON with the meta headers.
func (s *Server) reply(w http.ResponseWriter, code int, m Meta, v any) {
	w.Header().Set(HeaderSeq, strconv.FormatInt(m.Seq, 10))
	s.write(w, code, m, v)
}

// write writes v as JSON with the meta headers but X-Causeway-Seq.
func (s *Server) write(w http.ResponseWriter, code int, m Meta, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderLeader, m.Leader)
	w.Header().Set(HeaderNode, m.Node)
	w.WriteHeader(code)
	if err := WriteJSON(w, v); err != nil {
		s.log.Debug("write response", "err", err)
	}
}

// fail answers an error. A 503 is a failure that may pass (the state not
// loaded yet, the bus or database unreachable): it says when to ask again.
func (s *Server) fail(w http.ResponseWriter, code int, seq int64, err error) {
	if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "2")
	}
	m := s.meta(-1)
	if seq > 0 {
		m.Seq = seq
	}
	msg, id := s.shown(code, err)
	s.reply(w, code, m, ErrorResponse{Meta: m, Error: msg, RequestID: id})
}

// dependencyError is the failure of a dependency that may pass (the
// database, the bus, raft), answered 503: its answer says only what is
// unavailable (reason), as a 500 says only that the request failed, since
// err's text (a driver's message, a connection's address and user) is no
// reader's business.
type dependencyError struct {
	reason string
	err    error
}

func (e *dependencyError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *dependencyError) Unwrap() error { return e.err }

// dependency marks err, a failure of a dependency, for a 503 that says
// reason (what is unavailable) and a request id rather than err's text.
func dependency(reason string, err error) error { return &dependencyError{reason: reason, err: err} }

// shown is what the answer to a request that failed with code and err
// says: err's message, but for a 500, whose err is the server's own (see
// the package comment), and for a 503 of a dependency that failed
// (dependency): then only that the request failed, or what is unavailable,
// with a new request id, under which err is logged in full.
func (s *Server) shown(code int, err error) (msg, requestID string) {
	dep, isDep := errors.AsType[*dependencyError](err)
	isDep = isDep && code == http.StatusServiceUnavailable
	if code != http.StatusInternalServerError && !isDep {
		return err.Error(), ""
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	requestID = hex.EncodeToString(b)
	if isDep {
		// It may pass: a warning, not an error of the node's own.
		s.log.Warn("request failed: dependency unavailable", "request_id", requestID, "status", code, "err", err)
		return fmt.Sprintf("%s (request id %s: the node's log has its cause); retry later", dep.reason, requestID), requestID
	}
	s.log.Error("request failed", "request_id", requestID, "status", code, "err", err)
	return fmt.Sprintf("internal error (request id %s: the node's log has its cause)", requestID), requestID
}

// noSeq is the seq of a historical error that reflects no state: nothing
// was reconstructed.
const noSeq int64 = -1

// failHistorical answers an error of a historical query. Its seq is the
// one the state was reconstructed at (0: before the first event), or, with
// noSeq, none: no X-Causeway-Seq header and seq 0 in the body. Never the
// live seq, which the answer does not reflect.
func (s *Server) failHistorical(w http.ResponseWriter, code int, seq int64, err error) {
	m := s.meta(-1)
	m.Seq = max(seq, 0)
	msg, id := s.shown(code, err)
	body := ErrorResponse{Meta: m, Error: msg, RequestID: id, Historical: true}
	if seq == noSeq {
		s.write(w, code, m, body)
		return
	}
	s.reply(w, code, m, body)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	st := s.b.Status(r.Context())
	m := Meta{Seq: st.AppliedSeq, Leader: st.Leader, Node: s.node}
	stopping := s.isStopping()
	ready := st.Ready && !stopping
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	// Open to anyone (probes carry no token): the answer, not the
	// node's status, which /v1/status gives to readers.
	s.reply(w, code, m, ReadyResponse{Meta: m, Ready: ready, Lag: st.Lag, Stopping: stopping})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.b.Status(r.Context())
	if st.Error != "" && !isAdmin(r) {
		// Its text (a database's address and user, a driver's message)
		// is no reader's business, as a 500's is not: that there is one is.
		st.Error = "the node has a recent error: an admin token shows it, and the node's log has it"
	}
	m := Meta{Seq: st.AppliedSeq, Leader: st.Leader, Node: s.node}
	s.reply(w, http.StatusOK, m, StatusResponse{Meta: m, Status: st})
}

// dump writes the canonical dump to the response as it is rendered (from
// the Backend's copy of the state), rather than render it whole in memory
// first: at 100k entities a dump of 64 MB took about 690 MB per request
// so. A failure once some of it is sent cannot be answered with a 500: the
// response is aborted (http.ErrAbortHandler), so that the client sees a
// broken answer rather than a cut dump that passes for whole. One dump is
// written at a time (another waits for it a few seconds, then gets 503
// busy): each takes the follower's lock for its copy of the state (184 ms
// at 100k entities) and holds the copy (39 MB) until its client has
// taken the dump, up to the write timeout.
func (s *Server) dump(w http.ResponseWriter, r *http.Request) {
	if !s.take(w, r, s.dumps) {
		return
	}
	defer func() { <-s.dumps.c }()
	write, seq, err := s.b.Dump()
	if err != nil {
		s.fail(w, http.StatusInternalServerError, 0, fmt.Errorf("dump: %w", err))
		return
	}
	m := s.meta(seq)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderSeq, strconv.FormatInt(m.Seq, 10))
	w.Header().Set(HeaderLeader, m.Leader)
	w.Header().Set(HeaderNode, m.Node)
	cw := &countingWriter{w: w}
	if err := write(cw); err != nil {
		if cw.n == 0 {
			s.fail(w, http.StatusInternalServerError, 0, fmt.Errorf("dump: %w", err))
			return
		}
		s.log.Warn("dump aborted after part of it was sent", "bytes", cw.n, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// countingWriter counts the bytes written through it. An empty write is
// not passed on: to a ResponseWriter it would send the headers, with 200.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	servers, err := s.b.Cluster()
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, 0, dependency("raft membership unavailable", fmt.Errorf("list raft members: %w", err)))
		return
	}
	m := s.meta(-1)
	s.reply(w, http.StatusOK, m, ClusterResponse{Meta: m, Servers: servers})
}

type memberRequest struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
}

func (s *Server) clusterJoin(w http.ResponseWriter, r *http.Request) {
	var req memberRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, bodyStatus(err), 0, err)
		return
	}
	if req.ID == "" || req.Address == "" {
		s.fail(w, http.StatusBadRequest, 0, errors.New("id and address are required"))
		return
	}
	if err := checkRaftAddress(req.Address); err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	s.member(w, s.b.Join(req.ID, req.Address))
}

// checkRaftAddress refuses a join's address that is not host:port with a
// port raft can dial: the leader would add a voter no one reaches, and it
// would count toward the quorum.
func checkRaftAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want the raft host:port: %w", addr, err)
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || r == '/' }) {
		return fmt.Errorf("address %q: want the raft host:port: no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: want the raft host:port: port %q is not 1 to 65535", addr, port)
	}
	return nil
}

func (s *Server) clusterRemove(w http.ResponseWriter, r *http.Request) {
	var req memberRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, bodyStatus(err), 0, err)
		return
	}
	if req.ID == "" {
		s.fail(w, http.StatusBadRequest, 0, errors.New("id is required"))
		return
	}
	s.member(w, s.b.Remove(req.ID))
}

func (s *Server) member(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotLeader):
		s.fail(w, http.StatusConflict, 0, err)
	case errors.Is(err, ErrRefused):
		s.fail(w, http.StatusUnprocessableEntity, 0, err)
	case errors.Is(err, ErrNotFound):
		s.fail(w, http.StatusNotFound, 0, err)
	case err != nil:
		s.fail(w, http.StatusInternalServerError, 0, err)
	default:
		servers, err := s.b.Cluster()
		if err != nil {
			s.fail(w, http.StatusInternalServerError, 0, err)
			return
		}
		m := s.meta(-1)
		s.reply(w, http.StatusOK, m, ClusterResponse{Meta: m, Servers: servers})
	}
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	// One value: what follows it (a second object, a stray brace) would
	// otherwise be ignored unread.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("decode request body after its JSON value: %w", err) // over MaxBodyBytes: 413
		}
		return errors.New("decode request body: more after its JSON value")
	}
	return nil
}

// bodyStatus is the status for a request body that could not be read or
// decoded: 413 when it is over MaxBodyBytes, else 400.
func bodyStatus(err error) int {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}
