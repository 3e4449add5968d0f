package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/causeway/causeway/drivers"
	"github.com/causeway/causeway/drivers/alertmanager"
	"github.com/causeway/causeway/drivers/static"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/listeners"
	lam "github.com/causeway/causeway/listeners/alertmanager"
	"github.com/causeway/causeway/listeners/events"
	"github.com/causeway/causeway/listeners/openstack"
	"github.com/causeway/causeway/notifier"
	"github.com/causeway/causeway/persister"
	"github.com/causeway/causeway/processor"
	"gopkg.in/yaml.v3"
)

// fileConfig is the one YAML file (/etc/causeway/causeway.yaml): a section
// per component, decoded strictly (unknown keys are errors). Each component
// package owns its section's type, defaults and Validate; this file only
// composes them and fills the shared database and broker settings into the
// sections that leave them empty.
type fileConfig struct {
	// Database is the MariaDB of the event log, shared by every component.
	Database databaseConfig `yaml:"database"`
	// Bus is the RabbitMQ broker of Causeway's events, shared too.
	Bus busConfig `yaml:"bus"`

	Persister persisterSection `yaml:"persister"`
	Processor processor.Config `yaml:"processor"`
	Drivers   driversSection   `yaml:"drivers"`
	Listener  listenerSection  `yaml:"listener"`
	Notifier  notifier.Config  `yaml:"notifier"`

	// sections are the top-level keys of the file. Only the processor
	// daemon needs a processor section, so check-config validates it only
	// when it is there, as it does the drivers' and listeners' sections;
	// and it requires the shared settings the sections there need.
	sections map[string]bool
}

// needs are the shared settings a command cannot do without: a listener
// or driver host need not hold the database's credentials.
type needs uint8

const (
	needDatabase needs = 1 << iota
	needBus
	needBoth = needDatabase | needBus
)

// sectionNeeds is what the components of the file's sections need: the
// persister and the processor both settings, the drivers and the
// listener the bus (the notifier checks its own dsn). A file of the
// shared sections alone is for every component.
func (cfg *fileConfig) sectionNeeds() needs {
	var n needs
	components := false
	for s, need := range map[string]needs{"persister": needBoth, "processor": needBoth, "drivers": needBus, "listener": needBus, "notifier": 0} {
		if cfg.sections[s] {
			components = true
			n |= need
		}
	}
	if !components {
		return needBoth
	}
	return n
}

// require reports the shared settings of n that the file leaves empty.
func (cfg *fileConfig) require(n needs) error {
	// A _file that is set but could not be read was reported as such.
	var errs []error
	if n&needDatabase != 0 && cfg.Database.DSN == "" && cfg.Database.DSNFile == "" {
		errs = append(errs, errors.New("database.dsn: is required (or database.dsn_file)"))
	}
	if n&needBus != 0 && cfg.Bus.URL == "" && cfg.Bus.URLFile == "" {
		errs = append(errs, errors.New("bus.url: is required (or bus.url_file)"))
	}
	return errors.Join(errs...)
}

type databaseConfig struct {
	// DSN in go-sql-driver/mysql form, or DSNFile holding it (a secret).
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
}

type busConfig struct {
	// URL (vhost included), or URLFile holding it (it carries a password).
	URL          string        `yaml:"url"`
	URLFile      string        `yaml:"url_file"`
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

func (b busConfig) conn() bus.Conn {
	return bus.Conn{URL: b.URL, ReconnectMin: b.ReconnectMin, ReconnectMax: b.ReconnectMax}
}

type persisterSection struct {
	persister.Config `yaml:",inline"`
	// MetricsListen serves /metrics ("" = none).
	MetricsListen string `yaml:"metrics_listen"`
}

// publisherSection is the spool of a producer process (drivers, listener).
type publisherSection struct {
	// SpoolPath is the bbolt file holding events until the broker confirms them.
	SpoolPath      string `yaml:"spool_path"`
	MaxInFlight    int    `yaml:"max_in_flight"`
	SpoolMaxBytes  int64  `yaml:"spool_max_bytes"`
	SpoolMaxEvents int    `yaml:"spool_max_events"`
}

func (p publisherSection) config(b busConfig) bus.PublisherConfig {
	return bus.PublisherConfig{
		Conn: b.conn(), SpoolPath: p.SpoolPath, MaxInFlight: p.MaxInFlight,
		SpoolMaxBytes: p.SpoolMaxBytes, SpoolMaxEvents: p.SpoolMaxEvents,
	}
}

type staticSection struct {
	static.Config    `yaml:",inline"`
	drivers.Schedule `yaml:",inline"`
}

// validate checks the driver's config and schedule, and that settle
// leaves a pull the time to read: every pull waits settle at least, and
// pull_timeout ends it.
func (s *staticSection) validate() error {
	errs := []error{s.Config.Validate(), s.Schedule.Validate()}
	settle, timeout := s.Settle, s.PullTimeout
	if settle == 0 {
		settle = static.DefaultSettle
	}
	if timeout == 0 {
		timeout = drivers.DefaultPullTimeout
	}
	if settle > 0 && timeout > 0 && 2*settle > timeout {
		errs = append(errs, fmt.Errorf("settle: %s is over half of pull_timeout %s: every pull waits settle at least once, "+
			"and a file still being written twice, within pull_timeout", settle, timeout))
	}
	return errors.Join(errs...)
}

type driversSection struct {
	Publisher     publisherSection     `yaml:"publisher"`
	MetricsListen string               `yaml:"metrics_listen"`
	Static        *staticSection       `yaml:"static"`
	Alertmanager  *alertmanager.Config `yaml:"alertmanager"`
}

type listenerSection struct {
	// Server is the HTTP server of every push endpoint (address, auth, limits).
	Server        listeners.Config `yaml:"server"`
	Publisher     publisherSection `yaml:"publisher"`
	MetricsListen string           `yaml:"metrics_listen"`
	// Each endpoint is on when its section is present.
	Alertmanager *lam.Config       `yaml:"alertmanager"`
	Events       *events.Config    `yaml:"events"`
	OpenStack    *openstack.Config `yaml:"openstack"`
}

// loadConfig reads (readConfig: an overlay is laid over its base),
// decodes, completes and validates the file at path.
func loadConfig(path string, n needs) (*fileConfig, error) {
	raw, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(raw, n)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// parseConfig decodes raw strictly and resolves the shared settings,
// requiring those of n. It checks the shared sections; each component
// validates its own section when it starts (and check-config validates
// them all).
func parseConfig(raw []byte, n needs) (*fileConfig, error) {
	cfg, err := decodeConfig(raw)
	if cfg == nil {
		return nil, err
	}
	return cfg, errors.Join(err, invalidConfig(cfg.require(n)))
}

// exitConfig is the exit status of a daemon whose configuration is wrong
// (sysexits' EX_CONFIG). The units do not restart it: it would fail the
// same way every two seconds until an operator edits the file. A file
// that cannot be read (the configuration, a secret it names) exits 1 and
// is restarted, since provisioning may still be writing it.
const exitConfig = 78

// configError marks an error as the configuration's content being wrong:
// it does not decode, or a value is refused.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

func (e *configError) Unwrap() error { return e.err }

// invalidConfig marks err (nil stays nil) as the configuration's content
// being wrong.
func invalidConfig(err error) error {
	if err == nil {
		return nil
	}
	return &configError{err: err}
}

// decodeConfig decodes raw strictly, reads the shared secrets and lets the
// sections with their own connection settings inherit the shared ones. It
// returns a nil config only when raw does not decode.
func decodeConfig(raw []byte) (*fileConfig, error) {
	var cfg fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalidConfig(errors.New("the file is empty"))
		}
		return nil, invalidConfig(err)
	}
	if err := noMoreDocuments(dec); err != nil {
		return nil, invalidConfig(err)
	}
	var sections map[string]yaml.Node
	if yaml.Unmarshal(raw, &sections) == nil {
		cfg.sections = map[string]bool{}
		for k := range sections {
			cfg.sections[k] = true
		}
	}
	var errs []error
	if err := readSecret(&cfg.Database.DSN, cfg.Database.DSNFile, "database.dsn_file"); err != nil {
		errs = append(errs, err)
	}
	if err := readSecret(&cfg.Bus.URL, cfg.Bus.URLFile, "bus.url_file"); err != nil {
		errs = append(errs, err)
	}
	if cfg.Processor.DatabaseDSN == "" {
		cfg.Processor.DatabaseDSN = cfg.Database.DSN
	}
	if cfg.Processor.AMQPURL == "" {
		cfg.Processor.AMQPURL = cfg.Bus.URL
	}
	cfg.Processor.AMQPReconnectMin = cfg.Bus.ReconnectMin
	cfg.Processor.AMQPReconnectMax = cfg.Bus.ReconnectMax
	if cfg.Notifier.DSN == "" && cfg.Notifier.DSNFile == "" {
		cfg.Notifier.DSN = cfg.Database.DSN
	}
	if cfg.Notifier.AMQPURL == "" {
		cfg.Notifier.AMQPURL = cfg.Bus.URL
	}
	if cfg.Listener.OpenStack != nil && cfg.Listener.OpenStack.URL == "" {
		cfg.Listener.OpenStack.Conn = cfg.Bus.conn()
	}
	return &cfg, errors.Join(errs...)
}

// loadNotifierConfig is the notifier's section of the file at path, with the
// shared database and bus settings inherited, defaults set and validated.
// The notifier and the webhooks commands need only this section and what it
// inherits, so the file may leave out the others. With a logger (the
// notifier daemon's), it warns of the secret files it reads that other
// users may read.
func loadNotifierConfig(path string, log *slog.Logger) (notifier.Config, error) {
	raw, err := readConfig(path)
	if err != nil {
		return notifier.Config{}, err
	}
	cfg, err := decodeConfig(raw)
	if err != nil {
		return notifier.Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if log != nil {
		warnLooseSecrets(log, cfg.secretFiles(), "database", "notifier")
	}
	nc := cfg.Notifier
	nc.SetDefaults()
	if err := nc.Validate(); err != nil {
		return notifier.Config{}, fmt.Errorf("config %s: %w", path, invalidConfig(err)) // each problem names its path (notifier.…)
	}
	return nc, nil
}

// readSecret fills *v from file when file is set; setting both is an
// error. path is the YAML path of the file's key.
func readSecret(v *string, file, path string) error {
	if file == "" {
		return nil
	}
	if *v != "" {
		return invalidConfig(fmt.Errorf("%s: set one of the value and its _file, not both", path))
	}
	s, err := readSecretFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	*v = s
	return nil
}

// prefixErr names the YAML section of a component's validation error: of
// every problem, when err joins several. The result is a configError.
func prefixErr(section string, err error) error {
	return invalidConfig(prefixSection(section, err))
}

func prefixSection(section string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := make([]error, 0, len(j.Unwrap()))
		for _, e := range j.Unwrap() {
			errs = append(errs, prefixSection(section, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s: %w", section, err)
}
