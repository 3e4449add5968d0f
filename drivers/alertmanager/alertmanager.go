// Package alertmanager is the pull datasource of Prometheus alerts: every
// full pull lists the active alerts of an Alertmanager (API v2, GET
// /api/v2/alerts) and maps each, with the label rules of package alertmap,
// to an alarm on its resource. The runner of package drivers turns the pull
// into sync.begin, the alarm upserts and sync.end, so an alert that is no
// longer active is deleted by the sync even if its webhook was lost.
//
// Alertmanager keeps its alerts in memory only: after it starts, it lists
// only what its clients have sent again since. Its list is taken as the
// full truth only once it has run for Config.StartupGrace; a pull before
// that fails (ErrStarting), and is retried, rather than delete the alarms
// of every alert not re-sent yet.
package alertmanager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/drivers"
	"github.com/causeway/causeway/drivers/alertmap"
	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/redirect"
)

// Defaults of Config.
const (
	DefaultSource      = "alertmanager"
	DefaultMaxBodySize = 64 << 20
	DefaultTimeout     = 20 * time.Second
	// DefaultStartupGrace is twice Prometheus' default resend_delay and
	// evaluation_interval (1m each).
	DefaultStartupGrace = 2 * time.Minute
)

// ErrStarting is returned (wrapped) by GetAll while the Alertmanager has
// run for less than Config.StartupGrace: its alert list is incomplete.
var ErrStarting = errors.New("the Alertmanager started too recently for its alert list to be complete")

// Config configures the driver.
type Config struct {
	// Source names the datasource in the events (default "alertmanager").
	Source string `yaml:"source"`
	// URL is the Alertmanager's base URL (http://alertmanager:9093): one
	// Alertmanager, not a balancer over several, whose answer to the
	// start check (StartupGrace) could come from another member than its
	// list of alerts.
	URL string `yaml:"url"`
	// Token or TokenFile: a bearer token sent with each request (optional).
	// TokenFile is read for each request, so a token rotated in it is used
	// without a restart; empty, the request fails.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// CAFile names a PEM bundle of the CA certificates to trust for an
	// https URL instead of the system's (an Alertmanager whose
	// certificate the site's own CA signed).
	CAFile string `yaml:"ca_file"`
	// IncludeSilenced and IncludeInhibited also report silenced and
	// inhibited alerts (default: only active, unsilenced, uninhibited).
	IncludeSilenced  bool `yaml:"include_silenced"`
	IncludeInhibited bool `yaml:"include_inhibited"`
	// Timeout bounds one request (default 20s). A pull makes two at once
	// (the start check, /api/v2/status, and the alert list), each given
	// the whole of Timeout; the schedule's pull_timeout bounds the pull,
	// so it needs to be over Timeout, not twice it.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBodySize bounds the response (default 64 MiB).
	MaxBodySize int64 `yaml:"max_body_size"`
	// StartupGrace is how long after the Alertmanager started its alert
	// list is incomplete (default 2m): it keeps alerts in memory only, and
	// lists after a restart only those its clients have sent again since
	// (Prometheus re-sends every firing alert each resend_delay or
	// evaluation interval, whichever is longer). A pull within it fails
	// and is retried. Set it above the longest such interval of the
	// Alertmanager's clients. An Alertmanager whose /api/v2/status is not
	// served (a proxy that exposes only the alerts) is pulled without it,
	// with a warning.
	StartupGrace time.Duration `yaml:"startup_grace"`
	// Mapping maps alerts to alarms on resources.
	Mapping alertmap.Config `yaml:"mapping"`
	// Schedule is the runner's schedule of full pulls (interval, backoff...).
	Schedule drivers.Schedule `yaml:",inline"`
}

// Validate reports every problem of c, naming its YAML path.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: is required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url: %q is not an http:// or https:// URL", redactURL(c.URL)))
	} else if u.RawQuery != "" || u.ForceQuery || strings.Contains(c.URL, "#") {
		// The API paths are appended to it: after a query or a fragment
		// (the UI's http://am:9093/#/alerts) they would not be paths.
		errs = append(errs, fmt.Errorf("url: %q has a query or a fragment; give the base URL (http://alertmanager:9093)", u.Redacted()))
	}
	if c.Source != "" {
		if err := pull.CheckSource(c.Source); err != nil {
			errs = append(errs, err) // "source: ..."
		}
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, errors.New("token_file: token and token_file exclude each other"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must not be negative"))
	}
	if c.MaxBodySize < 0 {
		errs = append(errs, errors.New("max_body_size: must not be negative"))
	}
	if c.StartupGrace < 0 {
		errs = append(errs, errors.New("startup_grace: must not be negative"))
	}
	if err := c.Mapping.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			errs = append(errs, fmt.Errorf("mapping.%s", line))
		}
	}
	errs = append(errs, c.Schedule.Validate())
	return errors.Join(errs...)
}

// redactURL is s without the password of its user info (basic auth can
// only be given there), or a placeholder when s does not parse.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}

// String redacts the token and the URL's password.
func (c Config) String() string {
	tok := ""
	if c.Token != "" {
		tok = "<redacted>"
	}
	return fmt.Sprintf("{source:%s url:%s token:%s token_file:%s ca_file:%s include_silenced:%t include_inhibited:%t timeout:%s max_body_size:%d startup_grace:%s}",
		c.Source, redactURL(c.URL), tok, c.TokenFile, c.CAFile, c.IncludeSilenced, c.IncludeInhibited, c.Timeout, c.MaxBodySize, c.StartupGrace)
}

// Deps are the driver's collaborators.
type Deps struct {
	// Client defaults to a client with Config.Timeout.
	Client *http.Client
	Logger *slog.Logger
	// Registerer defaults to no registration.
	Registerer prometheus.Registerer
	// Now is the clock the Alertmanager's start is compared with
	// (default time.Now).
	Now func() time.Time
}

// Driver pulls an Alertmanager. It is safe for concurrent use.
type Driver struct {
	cfg      Config
	endpoint string
	status   string // GET /api/v2/status
	token    string
	client   *http.Client
	mapper   *alertmap.Mapper
	log      *slog.Logger
	now      func() time.Time
	unmapped prometheus.Counter
	// noStatus is set once the missing /api/v2/status was logged.
	noStatus atomic.Bool
}

// New validates cfg, reads the token file and builds the mapper. It starts
// nothing.
func New(cfg Config, deps Deps) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alertmanager driver config: %w", err)
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBodySize == 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.StartupGrace == 0 {
		cfg.StartupGrace = DefaultStartupGrace
	}
	m, err := alertmap.New(cfg.Mapping)
	if err != nil {
		return nil, err
	}
	tok := cfg.Token
	if cfg.TokenFile != "" {
		// Read at start too, so that a missing or empty file stops the
		// driver at once (exit 1, restarted) rather than failing pulls.
		if tok, err = readToken(cfg.TokenFile); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	q.Set("active", "true")
	q.Set("silenced", fmt.Sprint(cfg.IncludeSilenced))
	q.Set("inhibited", fmt.Sprint(cfg.IncludeInhibited))
	q.Set("unprocessed", "false")
	d := &Driver{
		cfg: cfg, endpoint: strings.TrimRight(cfg.URL, "/") + "/api/v2/alerts?" + q.Encode(),
		status: strings.TrimRight(cfg.URL, "/") + "/api/v2/status",
		token:  tok, client: deps.Client, mapper: m, log: deps.Logger, now: deps.Now,
		unmapped: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "causeway_driver_alertmanager_unmapped_alerts_total",
			Help:        "Alerts left out of a pull because the mapping rules do not map them.",
			ConstLabels: prometheus.Labels{"driver": cfg.Source},
		}),
	}
	if d.client == nil {
		// A redirect to another origin (https to http, another port) is
		// not followed: the token would go with it.
		d.client = &http.Client{Timeout: cfg.Timeout, CheckRedirect: redirect.SameOrigin}
		if cfg.CAFile != "" {
			pool, err := LoadCAFile(cfg.CAFile)
			if err != nil {
				return nil, err
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			d.client.Transport = tr
		}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.log = d.log.With("component", "drivers.alertmanager", "driver", cfg.Source)
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(d.unmapped); err != nil {
			return nil, fmt.Errorf("register alertmanager metrics: %w", err)
		}
	}
	return d, nil
}

// readToken reads the bearer token of token_file. An empty file is an
// error: pulled without its token, a proxy may answer with an anonymous
// view (no alerts), and the pull would delete every alarm.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token_file: %s is empty", path)
	}
	return tok, nil
}

// LoadCAFile reads the PEM bundle of ca_file into a pool; a file that
// holds no certificate is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: read %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Name is the source of the driver's events.
func (d *Driver) Name() string { return d.cfg.Source }

// Job is the driver with its configured schedule, for drivers.New.
func (d *Driver) Job() drivers.Job { return drivers.Job{Driver: d, Schedule: d.cfg.Schedule} }

// GettableAlert is one alert of GET /api/v2/alerts, in the fields used here.
type GettableAlert struct {
	Fingerprint  string            `json:"fingerprint"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// ParseAlerts decodes the body of GET /api/v2/alerts: a JSON list (null
// is refused).
func ParseAlerts(b []byte) ([]GettableAlert, error) {
	var out []GettableAlert
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode alerts: %w", err)
	}
	if out == nil {
		// encoding/json decodes null as a nil slice without an error; an
		// answer of no alerts is [] (decoded as an empty, non-nil slice).
		// Taken as none, a null (a broken proxy) would delete every alarm.
		return nil, errors.New("decode alerts: the answer is null, not a list of alerts")
	}
	for i, a := range out {
		if len(a.Labels) == 0 {
			return nil, fmt.Errorf("decode alerts: [%d].labels: is required", i)
		}
	}
	return out, nil
}

// Entities maps alerts to alarm entities. Alerts the mapping does not map
// are returned as errors, one per alert, naming the alert's index.
func Entities(m *alertmap.Mapper, alerts []GettableAlert) ([]event.Entity, []error) {
	var ents []event.Entity
	var errs []error
	seen := map[string]bool{}
	for i, a := range alerts {
		if a.Status.State != "" && a.Status.State != "active" && a.Status.State != "suppressed" {
			continue // "unprocessed": not yet routed, reported by a later pull
		}
		e, err := m.Entity(alertmap.Alert{
			Fingerprint: a.Fingerprint, Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d] (fingerprint %s): %w", i, a.Fingerprint, err))
			continue
		}
		// An alarm over the event size limit by its annotations is
		// pulled with them shortened, as the webhook takes it; one over
		// it by its labels is left whole, and refused by the publisher
		// (logged, counted by the runner).
		if short, _, err := alertmap.ShortenAnnotations(e); err == nil {
			e = short
		}
		probe := event.Event{V: event.Version, EventID: "probe", Source: "probe", Kind: event.KindEntityUpsert, ObservedAt: time.Unix(1, 0), Entity: &e}
		if err := probe.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("[%d] (fingerprint %s): %w", i, a.Fingerprint, err))
			continue
		}
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		ents = append(ents, e)
	}
	return ents, errs
}

// GetAll lists the active alerts and maps them. Alerts the rules do not
// map are left out of the pull, logged and counted. It fails with
// ErrStarting while the Alertmanager has run for less than startup_grace.
//
// The start check (/api/v2/status) and the alert list (/api/v2/alerts) are
// asked at once, each bounded by Config.Timeout and both by the pull's ctx
// (the schedule's pull_timeout): asked one after the other, a status
// answered slowly (it carries the Alertmanager's configuration) left the
// alert list less than its timeout. A failed check cancels the list. The
// list is taken only when the check passed; an Alertmanager restarted
// between the two answers is caught as when they were asked in turn (its
// status, if answered after the restart, says it is starting).
func (d *Driver) GetAll(ctx context.Context) ([]event.Entity, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		code int
		body []byte
		err  error
	}
	listed := make(chan answer, 1)
	go func() {
		code, body, err := d.get(ctx, d.endpoint, d.cfg.MaxBodySize, "max_body_size")
		listed <- answer{code, body, err}
	}()
	if err := d.checkUptime(ctx); err != nil {
		cancel()
		<-listed
		return nil, err
	}
	a := <-listed
	code, body, err := a.code, a.body, a.err
	if err != nil {
		return nil, fmt.Errorf("get alerts: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("get alerts: HTTP %d: %.200s", code, body)
	}
	alerts, err := ParseAlerts(body)
	if err != nil {
		return nil, err
	}
	ents, errs := Entities(d.mapper, alerts)
	d.logUnmapped(errs)
	return ents, nil
}

// maxUnmappedNamed bounds the unmapped alerts a pull's warning names.
const maxUnmappedNamed = 5

// logUnmapped counts the alerts of a pull the rules do not map, and logs
// them in one warning that names the first few (each one at debug level):
// a warning per alert, at every pull, flooded the log with thousands of
// lines a minute where a site has no rule for a team's alerts.
func (d *Driver) logUnmapped(errs []error) {
	if len(errs) == 0 {
		return
	}
	d.unmapped.Add(float64(len(errs)))
	named := make([]string, 0, min(len(errs), maxUnmappedNamed))
	for i, e := range errs {
		if i < maxUnmappedNamed {
			named = append(named, e.Error())
		}
		d.log.Debug("alert not mapped", "err", e)
	}
	d.log.Warn("alerts not mapped: left out of the pull (causeway_driver_alertmanager_unmapped_alerts_total)",
		"count", len(errs), "first", named)
}

// maxStatusBytes bounds the answer of /api/v2/status: it holds the
// Alertmanager's configuration file.
const maxStatusBytes = 16 << 20

// checkUptime fails with ErrStarting if the Alertmanager started less
// than startup_grace ago (by this host's clock). An Alertmanager that does
// not serve /api/v2/status (404, 403, or an answer without its uptime: a
// proxy that exposes the alerts alone) is not checked; that is logged
// once: failing every pull for it would stop the driver for good.
func (d *Driver) checkUptime(ctx context.Context) error {
	code, body, err := d.get(ctx, d.status, maxStatusBytes, "the status limit")
	if err != nil {
		return fmt.Errorf("get status: %w", err)
	}
	var st struct {
		Uptime time.Time `json:"uptime"`
	}
	switch {
	case code == http.StatusNotFound || code == http.StatusForbidden || code == http.StatusMethodNotAllowed:
	case code != http.StatusOK:
		return fmt.Errorf("get status: HTTP %d: %.200s", code, body)
	default:
		err = json.Unmarshal(body, &st)
	}
	if st.Uptime.IsZero() {
		if !d.noStatus.Swap(true) {
			d.log.Warn("the Alertmanager's /api/v2/status gives no uptime: its start is not checked, and a pull right after it restarted deletes the alarms of the alerts not sent to it again yet",
				"code", code, "err", err)
		}
		return nil
	}
	if up := d.now().Sub(st.Uptime); up < d.cfg.StartupGrace {
		return fmt.Errorf("%w: it started %s ago, under startup_grace %s; until its clients have sent their alerts again, it lists only some",
			ErrStarting, up.Round(time.Second), d.cfg.StartupGrace)
	}
	return nil
}

// get reads url, up to limit bytes of answer (an error past them, which
// names the limit).
func (d *Driver) get(ctx context.Context, url string, limit int64, limitName string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	tok := d.token
	if d.cfg.TokenFile != "" {
		// Each request reads it: a token rotated in the file (a secret
		// manager writes the new one) is used without a restart.
		if tok, err = readToken(d.cfg.TokenFile); err != nil {
			return 0, nil, err
		}
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK && int64(len(body)) > limit {
		return 0, nil, fmt.Errorf("response over %s %d", limitName, limit)
	}
	return resp.StatusCode, body, nil
}
