package processor

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/election"
	"github.com/causeway/causeway/snapshot"
)

func validConfig() Config {
	return Config{
		NodeID: "p1", DataDir: "/var/lib/causeway/p1",
		Raft:        election.Config{BindAddr: "127.0.0.1:7001", Peers: []election.Peer{{ID: "p1", Address: "127.0.0.1:7001"}}},
		API:         api.Config{Listen: "127.0.0.1:8999", Tokens: []api.Token{{Token: "x", Role: api.RoleAdmin}}},
		Snapshot:    snapshot.Config{Policy: snapshot.Policy{EveryEvents: 1000}},
		DatabaseDSN: "root@tcp(127.0.0.1:3306)/causeway",
		AMQPURL:     "amqp://guest:guest@127.0.0.1:5672/",
	}
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"empty", func(c *Config) { *c = Config{} }, []string{"node_id", "data_dir", "raft: bind_addr", "api: listen", "snapshot: policy", "database_dsn", "amqp_url"}},
		{"raft node id", func(c *Config) { c.Raft.NodeID = "other" }, []string{"raft.node_id", "peers: must include"}},
		{"negative", func(c *Config) { c.ReadyLag, c.PageSize, c.PollInterval = new(int64(-1)), -1, -1 }, []string{"ready_lag", "page_size", "poll_interval"}},
		{"retry", func(c *Config) { c.RetryMin, c.RetryMax = 10, 5 }, []string{"retry_max"}},
		{"amqp", func(c *Config) { c.AMQPURL = "http://x" }, []string{"amqp_url"}},
		{"dsn", func(c *Config) { c.DatabaseDSN = "root@tcp(127.0.0.1:3306)causeway" }, []string{"database_dsn: parse mysql dsn"}},
		{"leader writes", func(c *Config) {
			c.FlushInterval, c.MaxPending, c.HistoryPruneInterval, c.History.Retention = -1, -1, -1, -1
		}, []string{"flush_interval", "max_pending", "history_prune_interval", "history: retention"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v\nmissing %q", err, w)
				}
			}
		})
	}
	c := validConfig()
	c.SetDefaults()
	if c.Raft.DataDir != "/var/lib/causeway/p1/raft" || c.Raft.NodeID != "p1" || c.PollInterval != DefaultPollInterval ||
		c.FlushInterval != DefaultFlushInterval || c.MaxPending != DefaultMaxPending || c.History.Retention == 0 {
		t.Errorf("defaults = %+v", c)
	}
	if strings.Contains(c.String(), "root@") || strings.Contains(c.String(), "guest:guest") {
		t.Errorf("String leaks secrets: %s", c)
	}
}

// TestReadyLagZeroIsKept: ready_lag: 0 (ready only at the log head) is
// kept, and only a missing key takes the default.
func TestReadyLagZeroIsKept(t *testing.T) {
	for in, want := range map[string]int64{"ready_lag: 0": 0, "ready_lag: 7": 7, "page_size: 10": DefaultReadyLag} {
		var c Config
		if err := yaml.Unmarshal([]byte(in), &c); err != nil {
			t.Fatal(err)
		}
		c.SetDefaults()
		if *c.ReadyLag != want {
			t.Errorf("%s: ready_lag %d; want %d", in, *c.ReadyLag, want)
		}
	}
}

// TestBusConnCarriesReconnectBounds: the node's subscriber and publisher
// back off between broker connection attempts as the shared bus section
// says, not with the bus defaults.
func TestBusConnCarriesReconnectBounds(t *testing.T) {
	c := validConfig()
	c.AMQPReconnectMin, c.AMQPReconnectMax = 300*time.Millisecond, 7*time.Second
	got := c.busConn()
	if got.URL != c.AMQPURL || got.ReconnectMin != 300*time.Millisecond || got.ReconnectMax != 7*time.Second {
		t.Errorf("busConn() = %+v", got)
	}
}
