package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestOpenLogsTheDriverThroughTheLogger: what the MySQL driver logs by
// itself (here a pooled connection the server killed, found broken when
// it is used again, as after a database restart) goes to the logger
// WithLogger names, in its format, rather than as plain text on stderr,
// where it would break a daemon's JSON log.
func TestOpenLogsTheDriverThroughTheLogger(t *testing.T) {
	dsn := storetest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out lockedBuffer
	db, err := store.Open(ctx, dsn, store.WithLogger(slog.New(slog.NewJSONHandler(&out, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the one connection, killed below, is the one used again
	var id int64
	if err := db.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	admin := openDB(t, dsn)
	if _, err := admin.ExecContext(ctx, "KILL CONNECTION ?", id); err != nil {
		t.Fatal(err)
	}
	// database/sql retries a connection the driver found broken on a new
	// one: the pings succeed, and the driver says what it found.
	for !strings.Contains(out.String(), `"msg":"mysql driver"`) {
		if ctx.Err() != nil {
			t.Fatalf("the driver logged nothing through the logger after its connection was killed; logged:\n%s", out.String())
		}
		if err := db.PingContext(ctx); err != nil {
			t.Logf("ping: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, `"detail":`) {
			t.Errorf("a driver line is not a warning with its detail: %s", line)
		}
	}
}

// TestOpenGivesUpOnASilentServer: a server that accepts connections but
// never answers the handshake (hung, or something else on its port) is an
// error after Open's bound, not a hang, even when the caller's context
// has no deadline.
func TestOpenGivesUpOnASilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never written to
			mu.Unlock()
		}
	}()
	defer store.SetOpenTimeout(store.SetOpenTimeout(200 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := store.Open(context.Background(), "root@tcp("+ln.Addr().String()+")/x")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Open = %v, want a deadline error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Open still waits for a server that never answers")
	}
}
