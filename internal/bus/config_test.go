package bus

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidate(t *testing.T) {
	good := Conn{URL: "amqp://u:secret@127.0.0.1:5672/causeway"}
	tests := []struct {
		name string
		err  error
		want []string // substrings of the joined error; none means valid
	}{
		{"valid conn", good.Validate(), nil},
		{"missing url", Conn{}.Validate(), []string{"url: is required"}},
		{"bad scheme", Conn{URL: "http://u:secret@h/"}.Validate(), []string{"url: http://u:xxxxx@h/ is not an amqp"}},
		{"backoff order", Conn{URL: good.URL, ReconnectMin: time.Second, ReconnectMax: time.Millisecond}.Validate(), []string{"reconnect_max"}},
		{"publisher: every problem", PublisherConfig{MaxInFlight: -1, SpoolMaxBytes: -1, SpoolMaxEvents: -1}.Validate(),
			[]string{"url: is required", "spool_path: is required", "max_in_flight", "spool_max_bytes", "spool_max_events"}},
		{"consumer", ConsumerConfig{Conn: good, Prefetch: -1}.Validate(), []string{"prefetch"}},
		{"subscriber", SubscriberConfig{Conn: good, MaxQueued: -1, MaxQueuedBytes: -1}.Validate(), []string{"max_queued:", "max_queued_bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.want) == 0 {
				if tt.err != nil {
					t.Fatalf("Validate() = %v, want nil", tt.err)
				}
				return
			}
			if tt.err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(tt.err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", tt.err, w)
				}
			}
			if strings.Contains(tt.err.Error(), "secret") {
				t.Errorf("Validate() leaks the password: %q", tt.err)
			}
		})
	}
}

func TestConnStringRedacts(t *testing.T) {
	s := Conn{URL: "amqp://causeway:hunter2@127.0.0.1:5672/causeway"}.String()
	if strings.Contains(s, "hunter2") || !strings.Contains(s, "causeway:xxxxx@") {
		t.Fatalf("String() = %q, want the password redacted", s)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := NewPublisher(PublisherConfig{}, Deps{}); err == nil {
		t.Error("NewPublisher(zero config) = nil error")
	}
	if _, err := NewConsumer(ConsumerConfig{}, Deps{}); err == nil {
		t.Error("NewConsumer(zero config) = nil error")
	}
	if _, err := NewSubscriber(SubscriberConfig{}, Deps{}); err == nil {
		t.Error("NewSubscriber(zero config) = nil error")
	}
	if _, err := NewBatchPublisher(Conn{}, Deps{}); err == nil {
		t.Error("NewBatchPublisher(zero config) = nil error")
	}
}

// TestComponentsShareARegistry: one process (causeway all-in-one) registers
// one component of each role on one registry.
func TestComponentsShareARegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	deps := Deps{Registerer: reg}
	conn := Conn{URL: "amqp://127.0.0.1:1/"}
	p, err := NewPublisher(PublisherConfig{Conn: conn, SpoolPath: filepath.Join(t.TempDir(), "s.db")}, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if _, err := NewConsumer(ConsumerConfig{Conn: conn}, deps); err != nil {
		t.Fatal(err)
	}
	if _, err := NewConsumer(ConsumerConfig{Conn: conn, Queue: DeadLetterQueue}, deps); err != nil {
		t.Fatal(err)
	}
	if _, err := NewBatchPublisher(conn, deps); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSubscriber(SubscriberConfig{Conn: conn}, deps); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 10 {
		t.Fatalf("gathered %d metric families, want the bus's", len(mfs))
	}
}

// TestReconnectMaxDefaultsToMin: a reconnect_min above the default
// reconnect_max, with reconnect_max left out, is no wrong configuration:
// the maximum is then the minimum. Conn.Validate, which check-config runs
// on the file as written, accepts it, so the constructors, which validate
// after the defaults, must too.
func TestReconnectMaxDefaultsToMin(t *testing.T) {
	conn := Conn{URL: "amqp://guest:guest@127.0.0.1:1/", ReconnectMin: 3 * DefaultReconnectMax}
	if err := conn.Validate(); err != nil {
		t.Fatalf("Validate of reconnect_min %s without reconnect_max: %v", conn.ReconnectMin, err)
	}
	c := conn
	c.setDefaults()
	if c.ReconnectMax != c.ReconnectMin {
		t.Errorf("reconnect_max defaults to %s with reconnect_min %s, want the minimum", c.ReconnectMax, c.ReconnectMin)
	}
	deps := Deps{Logger: testLogger(t)}
	if _, err := NewPublisher(PublisherConfig{Conn: conn, SpoolPath: filepath.Join(t.TempDir(), "spool.db")}, deps); err != nil {
		t.Errorf("NewPublisher: %v", err)
	}
	if _, err := NewConsumer(ConsumerConfig{Conn: conn}, deps); err != nil {
		t.Errorf("NewConsumer: %v", err)
	}
	if _, err := NewBatchPublisher(conn, deps); err != nil {
		t.Errorf("NewBatchPublisher: %v", err)
	}
	if _, err := NewSubscriber(SubscriberConfig{Conn: conn}, deps); err != nil {
		t.Errorf("NewSubscriber: %v", err)
	}
}
