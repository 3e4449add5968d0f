package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied by New* to zero-valued config fields.
const (
	DefaultReconnectMin   = 100 * time.Millisecond
	DefaultReconnectMax   = 10 * time.Second
	DefaultMaxInFlight    = 256
	DefaultConfirmTimeout = 30 * time.Second
	DefaultSpoolMaxBytes  = 1 << 30
	DefaultSpoolMaxEvents = 1_000_000
	DefaultPrefetch       = 1000
	DefaultSubscriberMax  = 10_000
	// DefaultSubscriberMaxBytes bounds a subscriber's broker-side queue in
	// bytes: a follower that lags reads the log from the database anyway,
	// and batches of large events held for it by the count bound alone
	// could take gigabytes of the broker's memory (see MaxQueuedBytes).
	DefaultSubscriberMaxBytes = 64 << 20
)

// Conn configures the broker connection that every component owns.
type Conn struct {
	// URL is the AMQP URL, vhost included (amqp://user:pass@host:5672/causeway).
	URL string `yaml:"url"`
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

func (c *Conn) setDefaults() {
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		// Never under a reconnect_min set above the default, which
		// Validate accepts as written.
		c.ReconnectMax = max(DefaultReconnectMax, c.ReconnectMin)
	}
}

// Validate reports every problem of c, naming its YAML key.
func (c Conn) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: is required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		errs = append(errs, fmt.Errorf("url: %s is not an amqp:// or amqps:// URL", redactURL(c.URL)))
	}
	if c.ReconnectMin < 0 {
		errs = append(errs, errors.New("reconnect_min: must not be negative"))
	}
	if c.ReconnectMax < 0 || (c.ReconnectMax > 0 && c.ReconnectMax < c.ReconnectMin) {
		errs = append(errs, errors.New("reconnect_max: must be at least reconnect_min"))
	}
	return errors.Join(errs...)
}

// String redacts the password of the URL.
func (c Conn) String() string {
	return fmt.Sprintf("{url:%s reconnect_min:%s reconnect_max:%s}", redactURL(c.URL), c.ReconnectMin, c.ReconnectMax)
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable url>"
	}
	return u.Redacted()
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Conn `yaml:",inline"`
	// SpoolPath is the bbolt file that holds events until the broker
	// confirms them. One Publisher at a time may open it.
	SpoolPath string `yaml:"spool_path"`
	// MaxInFlight bounds the published-but-unconfirmed messages (default 256).
	MaxInFlight int `yaml:"max_in_flight"`
	// ConfirmTimeout ends a broker session whose oldest unconfirmed message
	// waited this long (default 30s), so a lost confirm cannot stall the
	// spool: the next session re-sends it.
	ConfirmTimeout time.Duration `yaml:"confirm_timeout"`
	// SpoolMaxBytes and SpoolMaxEvents bound the spool; Publish fails with
	// ErrSpoolFull past them (defaults 1 GiB, 1e6 events).
	SpoolMaxBytes  int64 `yaml:"spool_max_bytes"`
	SpoolMaxEvents int   `yaml:"spool_max_events"`
	// Exchange is where events go (default EventsExchange). Another name
	// is declared as a durable topic exchange; what it routes to is the
	// operator's (an unroutable event is returned and stays spooled).
	Exchange string `yaml:"exchange"`
}

func (c *PublisherConfig) setDefaults() {
	c.Conn.setDefaults()
	if c.Exchange == "" {
		c.Exchange = EventsExchange
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if c.SpoolMaxEvents == 0 {
		c.SpoolMaxEvents = DefaultSpoolMaxEvents
	}
}

// Validate reports every problem of c, naming its YAML key.
func (c PublisherConfig) Validate() error {
	errs := []error{c.Conn.Validate()}
	if c.SpoolPath == "" {
		errs = append(errs, errors.New("spool_path: is required"))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, errors.New("max_in_flight: must not be negative"))
	}
	if c.ConfirmTimeout < 0 {
		errs = append(errs, errors.New("confirm_timeout: must not be negative"))
	}
	if c.SpoolMaxBytes < 0 {
		errs = append(errs, errors.New("spool_max_bytes: must not be negative"))
	}
	if c.SpoolMaxEvents < 0 {
		errs = append(errs, errors.New("spool_max_events: must not be negative"))
	}
	if c.Exchange == DeadLetterExchange || c.Exchange == SequencedExchange || strings.HasPrefix(c.Exchange, "amq.") {
		errs = append(errs, fmt.Errorf("exchange: %q is reserved", c.Exchange))
	}
	return errors.Join(errs...)
}

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	Conn `yaml:",inline"`
	// Queue to consume; default PersistQueue.
	Queue string `yaml:"queue"`
	// Prefetch is the broker's window of unacked deliveries (default 1000).
	Prefetch int `yaml:"prefetch"`
	// DeadLettersOnly declares only the dead-letter exchange and queue
	// (DeclareDeadLetters), for a consumer of a broker that is not
	// Causeway's; by default the whole topology is declared.
	DeadLettersOnly bool `yaml:"-"`
	// DeadLetterTimeout bounds one dead-letter publish, confirm included
	// (default 10s). It is done on a connection of its own, which a broker
	// resource alarm blocks while the consuming one goes on; past the
	// timeout the caller falls back to what it does when the publish fails.
	DeadLetterTimeout time.Duration `yaml:"dead_letter_timeout"`
}

// DefaultDeadLetterTimeout is ConsumerConfig.DeadLetterTimeout's default.
const DefaultDeadLetterTimeout = 10 * time.Second

func (c *ConsumerConfig) setDefaults() {
	c.Conn.setDefaults()
	if c.Queue == "" {
		c.Queue = PersistQueue
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.DeadLetterTimeout == 0 {
		c.DeadLetterTimeout = DefaultDeadLetterTimeout
	}
}

// Validate reports every problem of c, naming its YAML key.
func (c ConsumerConfig) Validate() error {
	errs := []error{c.Conn.Validate()}
	if c.Prefetch < 0 {
		errs = append(errs, errors.New("prefetch: must not be negative"))
	}
	if c.DeadLetterTimeout < 0 {
		errs = append(errs, errors.New("dead_letter_timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

// SubscriberConfig configures a Subscriber of the sequenced stream.
type SubscriberConfig struct {
	Conn `yaml:",inline"`
	// MaxQueued bounds the subscriber's broker-side queue (default 10000
	// batches); past it the oldest batches are dropped, which the follower
	// sees as a gap (Batch.PrevSeq) and repairs from the database.
	MaxQueued int `yaml:"max_queued"`
	// MaxQueuedBytes bounds the same queue by the bytes of its batches
	// (default 64 MiB), dropping the oldest past it as MaxQueued does. A
	// batch holds up to a persister batch of events, each up to
	// event.MaxEventBytes, so the count alone lets one lagging follower's
	// queue grow to gigabytes of broker memory, whose alarm blocks every
	// producer.
	MaxQueuedBytes int64 `yaml:"max_queued_bytes"`
}

func (c *SubscriberConfig) setDefaults() {
	c.Conn.setDefaults()
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultSubscriberMax
	}
	if c.MaxQueuedBytes == 0 {
		c.MaxQueuedBytes = DefaultSubscriberMaxBytes
	}
}

// Validate reports every problem of c, naming its YAML key.
func (c SubscriberConfig) Validate() error {
	errs := []error{c.Conn.Validate()}
	if c.MaxQueued < 0 {
		errs = append(errs, errors.New("max_queued: must not be negative"))
	}
	if c.MaxQueuedBytes < 0 {
		errs = append(errs, errors.New("max_queued_bytes: must not be negative"))
	}
	return errors.Join(errs...)
}

// Deps are what every component of the package is given.
type Deps struct {
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// Registerer defaults to no registration (metrics still counted).
	Registerer prometheus.Registerer
	// Now defaults to time.Now; it is used only for latency metrics.
	Now func() time.Time
}

func (d Deps) withDefaults(component string) Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Logger = d.Logger.With("component", component)
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}
