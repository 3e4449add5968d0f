package election

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
)

// TestOpenRaftPortIsReported: raft's TCP transport authenticates no one
// and encrypts nothing: whoever reaches bind_addr can send a node
// heartbeats of a higher term as a leader (the node then follows it, and
// the cluster has no leader of its own) or entries that change its
// membership. A node whose raft listens past loopback said nothing of it;
// it warns at its start, naming the key, so that the port is kept on a
// network only the processors reach. On loopback, or over raft.tls, it
// says nothing.
func TestOpenRaftPortIsReported(t *testing.T) {
	ca := tlsfiletest.NewCA(t, "raft cluster")
	for _, c := range []struct {
		name, host string
		tls        TLSConfig
		want       int
	}{{"all interfaces", "0.0.0.0", TLSConfig{}, 1}, {"loopback", "127.0.0.1", TLSConfig{}, 0}, {"all interfaces, tls", "0.0.0.0", issue(t, ca, "n0"), 0}} {
		t.Run(c.name, func(t *testing.T) {
			_, port, err := net.SplitHostPort(freeAddr(t))
			if err != nil {
				t.Fatal(err)
			}
			adv := net.JoinHostPort("127.0.0.1", port)
			h := logtest.NewHandler()
			n, err := New(Config{
				NodeID: "n0", BindAddr: net.JoinHostPort(c.host, port), AdvertiseAddr: adv, DataDir: t.TempDir(), TLS: c.tls,
				Peers:            []Peer{{ID: "n0", Address: adv}},
				HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
				LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
			}, Deps{Registerer: prometheus.NewRegistry(), Logger: slog.New(h)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- n.Run(ctx) }()
			waitFor(t, "n0 leading", 10*time.Second, func() bool { return n.LeaderTerm() != 0 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := h.Count(func(r slog.Record) bool {
				return r.Level >= slog.LevelWarn && strings.Contains(r.Message, "unauthenticated")
			})
			if got != c.want {
				t.Errorf("%d warnings of an unauthenticated raft port; want %d", got, c.want)
			}
		})
	}
}
