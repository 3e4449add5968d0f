package store_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestOpenLogsTheDriverThroughTheLogger: what the MySQL driver logs by
// itself (here a pooled connection the server killed, found broken when
// it is used again, as after a database restart) goes to the logger
// WithLogger names, in its format, rather than as plain text on stderr,
// where it would break a daemon's JSON log.
func TestOpenLogsTheDriverThroughTheLogger(t *testing.T) {
	dsn := storetest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out logtest.Buffer
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

// lazily opens dsn with OpenLazily, closed when the test ends.
func lazily(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := store.OpenLazily(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAwaitWaitsForTheDatabase: Await on a database that is down (its
// port closed) warns at each failed attempt, with the error, and returns
// once the database is up, the pool then working.
func TestAwaitWaitsForTheDatabase(t *testing.T) {
	proxied, proxy := storetest.NewProxy(t, storetest.NewDB(t))
	proxy.Down()
	db := lazily(t, proxied)
	var out logtest.Buffer
	done := make(chan error, 1)
	go func() { done <- store.Await(context.Background(), db, slog.New(slog.NewJSONHandler(&out, nil))) }()
	for strings.Count(out.String(), `"msg":"waiting for the database"`) < 2 {
		select {
		case err := <-done:
			t.Fatalf("Await = %v with the database down; want it to wait", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !strings.Contains(out.String(), `"level":"WARN"`) || !strings.Contains(out.String(), "connection refused") {
		t.Errorf("the warnings do not say why the database does not answer:\n%s", out.String())
	}
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Await = %v once the database is up", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Await still waits a minute after the database came up")
	}
	if !strings.Contains(out.String(), `"msg":"the database answers"`) {
		t.Errorf("the end of the wait is not logged:\n%s", out.String())
	}
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// TestAwaitEndsWithItsContext: a stop while Await waits ends it at once
// with the context's error.
func TestAwaitEndsWithItsContext(t *testing.T) {
	proxied, proxy := storetest.NewProxy(t, storetest.ServerDSN(t))
	proxy.Down()
	db := lazily(t, proxied)
	var out logtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- store.Await(ctx, db, slog.New(slog.NewJSONHandler(&out, nil))) }()
	for !strings.Contains(out.String(), `"msg":"waiting for the database"`) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Await = %v after its context ended; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Await still waits 10s after its context ended")
	}
}

// TestWrongDSNIsErrDSN: a DSN the driver cannot parse, or that the server
// refuses (a user it does not know, a password it does not take, a
// database it does not have), is ErrDSN, at once: no waiting makes the
// server take it. A server that is down is not.
func TestWrongDSNIsErrDSN(t *testing.T) {
	server, err := mysql.ParseDSN(storetest.ServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	const syntax = "root@tcp(127.0.0.1:3306)causeway"
	if err := store.CheckDSN(syntax); !errors.Is(err, store.ErrDSN) {
		t.Errorf("CheckDSN(%q) = %v; want ErrDSN", syntax, err)
	}
	if _, err := store.OpenLazily(syntax); !errors.Is(err, store.ErrDSN) {
		t.Errorf("OpenLazily(%q) = %v; want ErrDSN", syntax, err)
	}
	if err := store.CheckDSN(server.FormatDSN()); err != nil {
		t.Errorf("CheckDSN of the test server's DSN: %v", err)
	}
	stranger := *server
	stranger.User, stranger.Passwd = "causeway_no_such_user", "wrong"
	wrongPassword := *server
	wrongPassword.Passwd = "causeway-wrong-password"
	nowhere := *server
	nowhere.DBName = "causeway_no_such_database"
	for _, tc := range []struct{ name, dsn string }{
		{"unknown user", stranger.FormatDSN()},
		{"wrong password", wrongPassword.FormatDSN()},
		{"unknown database", nowhere.FormatDSN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out logtest.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := store.Await(ctx, lazily(t, tc.dsn), slog.New(slog.NewJSONHandler(&out, nil)))
			if !errors.Is(err, store.ErrDSN) {
				t.Fatalf("Await = %v; want ErrDSN", err)
			}
			if out.String() != "" {
				t.Errorf("Await waited on a DSN the server refuses:\n%s", out.String())
			}
			if _, err := store.Open(ctx, tc.dsn); !errors.Is(err, store.ErrDSN) {
				t.Errorf("Open = %v; want ErrDSN", err)
			}
		})
	}
	proxied, proxy := storetest.NewProxy(t, server.FormatDSN())
	proxy.Down()
	if _, err := store.Open(context.Background(), proxied); err == nil || errors.Is(err, store.ErrDSN) {
		t.Errorf("Open of a server that is down = %v; want an error that is not ErrDSN", err)
	}
}

// TestOpenTalksUtf8mb4WhateverTheDSNSays: the log's identifiers are
// utf8mb4 columns, and an event id may hold any valid UTF-8, characters
// beyond the Basic Multilingual Plane included. A DSN that names the
// three-byte charset (charset=utf8, as many MySQL guides write it) made
// the session's string literals utf8mb3, and the dedup lookup of such an
// id failed with "Illegal mix of collations" (1270): an error the
// persister retries, so one such event stopped the log for good. A
// collation that is not utf8mb4's is refused as a wrong DSN.
func TestOpenTalksUtf8mb4WhateverTheDSNSays(t *testing.T) {
	ctx := context.Background()
	cfg, err := mysql.ParseDSN(storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Params = map[string]string{"charset": "utf8"}
	db := openDB(t, cfg.FormatDSN())
	log := store.NewLog(db, nil)
	const id = "host-\U0001F525-1"
	got, err := log.Append(ctx, entries(t, id, "plain"))
	if err != nil {
		t.Fatalf("Append of an id beyond the BMP over a charset=utf8 DSN: %v", err)
	}
	if len(got.Batch.Records) != 2 {
		t.Fatalf("Append stored %d records; want 2", len(got.Batch.Records))
	}
	again, err := log.Append(ctx, entries(t, id))
	if err != nil {
		t.Fatalf("Append of the id again: %v", err)
	}
	if len(again.Batch.Records) != 0 || len(again.Duplicates) != 1 {
		t.Fatalf("the id appended again: %d records, duplicates %v; want none stored, one duplicate", len(again.Batch.Records), again.Duplicates)
	}
	recs, err := log.ReadRange(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Event.EventID != id {
		t.Fatalf("log holds %d records, the first with id %q; want 2, the first %q", len(recs), recs[0].Event.EventID, id)
	}

	latin := *cfg
	latin.Params = nil
	latin.Collation = "latin1_swedish_ci"
	if err := store.CheckDSN(latin.FormatDSN()); !errors.Is(err, store.ErrDSN) {
		t.Errorf("CheckDSN with collation latin1_swedish_ci = %v; want ErrDSN", err)
	}
	if _, err := store.Open(ctx, latin.FormatDSN()); !errors.Is(err, store.ErrDSN) {
		t.Errorf("Open with collation latin1_swedish_ci = %v; want ErrDSN", err)
	}
	// The session's SET NAMES names the DSN's collation: one the server
	// does not have fails every connection, and waiting does not help.
	unknown := *cfg
	unknown.Params = nil
	unknown.Collation = "utf8mb4_0900_ai_ci"
	if _, err := store.Open(ctx, unknown.FormatDSN()); !errors.Is(err, store.ErrDSN) {
		t.Errorf("Open with collation %s, which MariaDB does not have = %v; want ErrDSN", unknown.Collation, err)
	}
}
