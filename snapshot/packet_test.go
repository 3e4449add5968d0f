package snapshot

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// envPrivateServer, when set, says that the MariaDB server of the test
// DSN is private to this test run: a test may change its global
// variables (never set it for a shared server, such as a developer's or
// CI's, where other tests run beside).
const envPrivateServer = "CAUSEWAY_TEST_MYSQL_PRIVATE"

// TestWriteFollowsALoweredPacketLimit: a writer that wrote its first
// snapshot under one max_allowed_packet keeps writing after the server's
// limit was lowered (SET GLOBAL, which the connections opened afterwards
// take): its chunks fit the limit of the connection that sends them.
func TestWriteFollowsALoweredPacketLimit(t *testing.T) {
	if os.Getenv(envPrivateServer) == "" {
		t.Skipf("%s is not set: this test changes the server's global max_allowed_packet", envPrivateServer)
	}
	g := newRig(t, Config{})
	g.recs = g.appendEvents(t, tickEvents(1, 20, nil), 10, time.Second)
	ctx := context.Background()
	var before int64
	if err := g.db.QueryRowContext(ctx, "SELECT @@GLOBAL.max_allowed_packet").Scan(&before); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := g.db.Exec("SET GLOBAL max_allowed_packet = ?", before); err != nil {
			t.Errorf("restore max_allowed_packet %d: %v", before, err)
		}
	})
	// 3 MiB that zstd cannot shrink: over the lowered limit in one chunk.
	payload := make([]byte, 3<<20)
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	take := func(seq int64) (Result, error) {
		return g.w.Take(ctx, 1, func() (Capture, error) {
			return Capture{Seq: seq, RecordedAt: g.recs[seq-1].RecordedAt, Encoding: "kv-json",
				Encode: func(w io.Writer) error { _, err := w.Write(payload); return err }}, nil
		})
	}
	if _, err := take(10); err != nil {
		t.Fatalf("write under a max_allowed_packet of %d: %v", before, err)
	}
	const lowered = 1 << 20
	if _, err := g.db.ExecContext(ctx, "SET GLOBAL max_allowed_packet = ?", lowered); err != nil {
		t.Fatal(err)
	}
	// The pooled connections keep the limit they were opened with: drop
	// them, as their lifetime would.
	g.db.SetMaxIdleConns(0)
	g.db.SetMaxIdleConns(8)
	res, err := take(20)
	if err != nil {
		t.Fatalf("write after max_allowed_packet was lowered to %d: %v", lowered, err)
	}
	if max := (res.Meta.Size + int64(res.Meta.Chunks) - 1) / int64(res.Meta.Chunks); max > lowered/4 {
		t.Errorf("%d bytes in %d chunks; want chunks of at most %d", res.Meta.Size, res.Meta.Chunks, lowered/4)
	}
	if _, _, err := NewStore(g.db, nil).Load(ctx, res.Meta); err != nil {
		t.Errorf("load the snapshot written under the lowered limit: %v", err)
	}
}
