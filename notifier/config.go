package notifier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/notifier/webhook"
)

// Config is the `notifier:` section of the configuration file.
type Config struct {
	// DSN of the MariaDB database (or DSNFile holding it).
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// InstanceID names this instance in leases (default host-pid); each
	// process adds a random part of its own.
	InstanceID string `yaml:"instance_id"`
	// PollInterval: how often an idle subscriber looks for new rows.
	PollInterval time.Duration `yaml:"poll_interval"`
	// ScanInterval: how often the instance looks for subscribers to take
	// over and re-reads subscription specs.
	ScanInterval time.Duration `yaml:"scan_interval"`
	// LeaseTTL: a subscriber whose lease is not renewed for this long is
	// taken over by another instance (renewed every LeaseTTL/3, and before
	// any attempt once that is due). Delivery.Timeout must be at most half
	// of it, so that a lease cannot expire during an attempt.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// StatusInterval: how often the backlog of a subscriber is counted.
	StatusInterval time.Duration `yaml:"status_interval"`
	// QueryTimeout bounds each statement, and each transaction, of the
	// running notifier: a database that stopped answering (frozen, or a
	// connection cut off by a network that drops everything) fails it
	// then, as any database error (the worker stops, and the next scan
	// takes its subscriber up again from the stored cursor), rather than
	// hold the worker or the scan until the kernel's TCP timeout ends the
	// connection. It must exceed the longest healthy one: a count of a
	// subscriber's backlog, or a move of 5,000 rows to the dead-letter
	// table (larger moves take several transactions).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// BatchSize: rows read at a time.
	BatchSize int `yaml:"batch_size"`
	// Delivery is the default policy; a subscription's spec overrides it.
	Delivery DeliveryConfig `yaml:"delivery"`
	// Secrets maps a subscription's secret_ref to its signing secret.
	Secrets map[string]SecretConfig `yaml:"secrets"`
	// UserAgent of the requests.
	UserAgent string `yaml:"user_agent"`
	// MetricsListen is the address of /metrics ("" = no metrics server).
	MetricsListen string `yaml:"metrics_listen"`
	// AMQPURL is used by `causeway webhooks add|delete` only, to publish
	// subscription events to the log.
	AMQPURL string `yaml:"amqp_url"`
	// ShutdownGrace bounds the wait for in-flight deliveries on SIGTERM;
	// a stop whose grace runs out leaves them (they are sent again) and
	// is a clean stop all the same.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// DeadLetterRetention: dead letters older than this (by dead_at) are
	// deleted (default 30 days): long enough to notice and redrive them,
	// and the table does not grow for ever.
	DeadLetterRetention time.Duration `yaml:"dead_letter_retention"`
}

// DeliveryConfig is the default delivery policy.
type DeliveryConfig struct {
	Timeout        time.Duration `yaml:"timeout"`
	MaxAge         time.Duration `yaml:"max_age"`
	BackoffInitial time.Duration `yaml:"backoff_initial"`
	// BackoffMax caps the backoff, and the wait a receiver's Retry-After
	// asks for (a longer one is waited up to it).
	BackoffMax time.Duration `yaml:"backoff_max"`
	// MaxBacklog: pending rows over which a subscriber's backlog is loud.
	MaxBacklog int `yaml:"max_backlog"`
	// BacklogPolicy when MaxBacklog is passed: "alert" (keep every row, be
	// loud) or "dead_letter" (move the oldest rows beyond the limit to the
	// dead-letter table, loudly).
	BacklogPolicy string `yaml:"backlog_policy"`
	// MaxRefusals: a row the receiver refuses this many times in a row
	// with 400, 413, 415 or 422 (the request itself refused, not the
	// receiver unavailable or misconfigured) moves to the dead-letter
	// table with the answer, and the next rows go on; 0: it waits like any
	// failure, blocking its subscriber until max_age.
	MaxRefusals int `yaml:"max_refusals"`
}

// SecretConfig is a signing secret (whsec_...), inline or in a file.
type SecretConfig struct {
	Value string `yaml:"value"`
	File  string `yaml:"file"`
}

// String redacts the secret.
func (s SecretConfig) String() string {
	if s.File != "" {
		return "{file:" + s.File + "}"
	}
	return "{value:<redacted>}"
}

// Defaults.
const (
	DefaultPollInterval   = 200 * time.Millisecond
	DefaultScanInterval   = 2 * time.Second
	DefaultLeaseTTL       = 30 * time.Second
	DefaultStatusInterval = 5 * time.Second
	DefaultQueryTimeout   = 30 * time.Second
	// DefaultDeadLetterRetention is how long dead letters are kept.
	DefaultDeadLetterRetention = 30 * 24 * time.Hour
	DefaultBatchSize           = 200
	DefaultTimeout             = 10 * time.Second
	DefaultMaxAge              = 72 * time.Hour
	DefaultBackoffInitial      = time.Second
	DefaultBackoffMax          = 5 * time.Minute
	DefaultMaxBacklog          = 100_000
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.PollInterval, DefaultPollInterval)
	set(&c.ShutdownGrace, 10*time.Second)
	set(&c.DeadLetterRetention, DefaultDeadLetterRetention)
	set(&c.ScanInterval, DefaultScanInterval)
	set(&c.LeaseTTL, DefaultLeaseTTL)
	set(&c.StatusInterval, DefaultStatusInterval)
	set(&c.QueryTimeout, DefaultQueryTimeout)
	set(&c.Delivery.Timeout, DefaultTimeout)
	set(&c.Delivery.MaxAge, DefaultMaxAge)
	set(&c.Delivery.BackoffInitial, DefaultBackoffInitial)
	set(&c.Delivery.BackoffMax, DefaultBackoffMax)
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Delivery.MaxBacklog == 0 {
		c.Delivery.MaxBacklog = DefaultMaxBacklog
	}
	if c.Delivery.BacklogPolicy == "" {
		c.Delivery.BacklogPolicy = subscription.BacklogAlert
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.UserAgent == "" {
		c.UserAgent = "causeway-notifier"
	}
}

// Validate joins every problem, each naming its YAML path.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("notifier.%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if (c.DSN == "") == (c.DSNFile == "") {
		bad("dsn", "exactly one of dsn and dsn_file is required")
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"poll_interval", c.PollInterval}, {"scan_interval", c.ScanInterval}, {"lease_ttl", c.LeaseTTL},
		{"status_interval", c.StatusInterval}, {"delivery.timeout", c.Delivery.Timeout}, {"delivery.max_age", c.Delivery.MaxAge},
		{"delivery.backoff_initial", c.Delivery.BackoffInitial}, {"delivery.backoff_max", c.Delivery.BackoffMax},
		{"dead_letter_retention", c.DeadLetterRetention}, {"shutdown_grace", c.ShutdownGrace}, {"query_timeout", c.QueryTimeout},
	} {
		if d.v <= 0 {
			bad(d.path, "must be positive")
		}
	}
	if c.LeaseTTL > 0 && c.LeaseTTL < time.Second {
		bad("lease_ttl", "must be at least 1s")
	}
	if c.LeaseTTL > 0 && c.Delivery.Timeout > c.LeaseTTL/2 {
		// A lease renewed at most LeaseTTL/3 before an attempt must outlive
		// it, or another instance could deliver the next rows meanwhile.
		bad("delivery.timeout", "must be at most half of lease_ttl (%s)", c.LeaseTTL)
	}
	if c.Delivery.BackoffInitial > c.Delivery.BackoffMax {
		bad("delivery.backoff_initial", "is larger than delivery.backoff_max")
	}
	if c.BatchSize <= 0 || c.BatchSize > 10_000 {
		bad("batch_size", "must be 1 to 10000")
	}
	if c.Delivery.MaxBacklog <= 0 {
		bad("delivery.max_backlog", "must be positive")
	}
	if c.Delivery.MaxRefusals < 0 {
		bad("delivery.max_refusals", "must not be negative")
	}
	if p := c.Delivery.BacklogPolicy; p != subscription.BacklogAlert && p != subscription.BacklogDeadLetter {
		bad("delivery.backlog_policy", "must be %q or %q, not %q", subscription.BacklogAlert, subscription.BacklogDeadLetter, p)
	}
	if len(c.InstanceID) > 240 {
		bad("instance_id", "longer than 240 bytes")
	}
	names := make([]string, 0, len(c.Secrets))
	for k := range c.Secrets {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		s := c.Secrets[k]
		if (s.Value == "") == (s.File == "") {
			bad("secrets."+k, "exactly one of value and file is required")
			continue
		}
		if s.Value != "" {
			if _, err := webhook.ParseSecret(s.Value); err != nil {
				bad("secrets."+k+".value", "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// LoadConfig reads the `notifier:` section of the YAML file at path,
// strictly (unknown keys are errors), with defaults set and validated.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig is LoadConfig on bytes. Other components' sections are
// left alone; inside `notifier:` every key must be known.
func ParseConfig(b []byte) (Config, error) {
	var file struct {
		Notifier Config         `yaml:"notifier"`
		Others   map[string]any `yaml:",inline"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	c := file.Notifier
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ResolveDSN returns the DSN, reading DSNFile if set.
func (c Config) ResolveDSN() (string, error) {
	if c.DSNFile == "" {
		return c.DSN, nil
	}
	b, err := os.ReadFile(c.DSNFile)
	if err != nil {
		return "", fmt.Errorf("notifier.dsn_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ResolveSecrets reads every secret.
func (c Config) ResolveSecrets() (map[string]webhook.Secret, error) {
	out := make(map[string]webhook.Secret, len(c.Secrets))
	var errs []error
	for k, s := range c.Secrets {
		v := s.Value
		if s.File != "" {
			b, err := os.ReadFile(s.File)
			if err != nil {
				errs = append(errs, fmt.Errorf("notifier.secrets.%s.file: %w", k, err))
				continue
			}
			v = string(b)
		}
		sec, err := webhook.ParseSecret(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("notifier.secrets.%s: %w", k, err))
			continue
		}
		out[k] = sec
	}
	return out, errors.Join(errs...)
}

// policy is a subscription's effective delivery policy.
type policy struct {
	timeout, maxAge, backoffInitial, backoffMax time.Duration
	maxBacklog                                  int
	backlogPolicy                               string
}

func (c Config) policyFor(s subscription.Spec) policy {
	p := policy{
		timeout: c.Delivery.Timeout, maxAge: c.Delivery.MaxAge, backoffInitial: c.Delivery.BackoffInitial,
		backoffMax: c.Delivery.BackoffMax, maxBacklog: c.Delivery.MaxBacklog, backlogPolicy: c.Delivery.BacklogPolicy,
	}
	d := s.Delivery
	if d.Timeout > 0 {
		// Never longer than half the lease: see Validate.
		p.timeout = min(time.Duration(d.Timeout), c.LeaseTTL/2)
	}
	if d.MaxAge > 0 {
		p.maxAge = time.Duration(d.MaxAge)
	}
	if d.BackoffInitial > 0 {
		p.backoffInitial = time.Duration(d.BackoffInitial)
	}
	if d.BackoffMax > 0 {
		p.backoffMax = time.Duration(d.BackoffMax)
	}
	if p.backoffInitial > p.backoffMax {
		p.backoffInitial = p.backoffMax
	}
	if d.MaxBacklog > 0 {
		p.maxBacklog = d.MaxBacklog
	}
	if d.BacklogPolicy != "" {
		p.backlogPolicy = d.BacklogPolicy
	}
	return p
}
