package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Pool settings of Open. A persister holds one connection for each batch
// in flight and readers page through the log in short statements, so a
// small pool suffices; connections are recycled well inside MariaDB's
// wait_timeout (8 hours by default) and any proxy's idle timeout.
const (
	maxOpenConns    = 16
	maxIdleConns    = 8
	connMaxLifetime = 30 * time.Minute
	connMaxIdleTime = 5 * time.Minute
	dialTimeout     = 5 * time.Second
)

// openTimeout bounds Open's first connection (a variable: tests shorten it).
var openTimeout = 30 * time.Second

// Open opens a MariaDB database with the settings the store relies on and
// checks that it answers.
//
// Whatever the DSN says, times are parsed (parseTime=true) and read and
// written in UTC (loc=UTC, session time_zone '+00:00'), because every
// DATETIME(6) column of the schema holds UTC; and the session's charset is
// utf8mb4, the schema's (a DSN's charset=utf8 made literals utf8mb3, and an
// event id beyond the Basic Multilingual Plane unstorable: talkUtf8mb4). Unless the DSN sets
// interpolateParams, placeholders are interpolated client-side: one round
// trip a statement instead of three (prepare, execute, close), which matters
// for the persister's multi-row inserts whose placeholder count varies.
// Interpolation escapes BLOB bytes, which can double their size in the
// packet; writers of large values chunk below MaxPacket/2. Unless the DSN
// sets maxAllowedPacket, the driver uses the server's. A dial timeout of
// five seconds applies unless the DSN sets one, and the first connection,
// its handshake and ping included, must be made within openTimeout: a
// server that accepts connections but never answers (hung, or something
// else on its port) is an error, not a hang.
//
// A DSN the driver cannot parse, or that the server refuses, fails with
// an error that is ErrDSN (see there).
func Open(ctx context.Context, dsn string, opts ...Option) (*sql.DB, error) {
	db, name, err := openLazily(dsn, opts...)
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, db, name); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// OpenLazily is Open without the check that the database answers: it
// dials nothing, and fails only on a DSN the driver cannot parse (an
// ErrDSN). The pool connects when it is first used; a daemon calls Await
// first, so that it waits for a database that is not up yet instead of
// failing.
func OpenLazily(dsn string, opts ...Option) (*sql.DB, error) {
	db, _, err := openLazily(dsn, opts...)
	return db, err
}

// openLazily is OpenLazily, which also names the database as
// user@address/name for errors.
func openLazily(dsn string, opts ...Option) (*sql.DB, string, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, "", err
	}
	for _, o := range opts {
		o(cfg)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	if !strings.Contains(dsn, "interpolateParams=") {
		cfg.InterpolateParams = true
	}
	if !strings.Contains(dsn, "maxAllowedPacket=") {
		// 0: the driver reads the server's max_allowed_packet on connect
		// and refuses an oversized statement itself (mysql.ErrPktTooLarge)
		// instead of sending it and having the server drop the connection.
		cfg.MaxAllowedPacket = 0
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = dialTimeout
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, "", dsnError{fmt.Errorf("mysql connector: %w", err)}
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxLifetime(connMaxLifetime)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	return db, fmt.Sprintf("%s@%s/%s", cfg.User, cfg.Addr, cfg.DBName), nil
}

// talkUtf8mb4 makes the session's charset utf8mb4, the schema's, whatever
// the DSN's charset: with a narrower one (charset=utf8 is utf8mb3) the
// string literals of a statement cannot hold every identifier an event
// may carry, and comparing one beyond the Basic Multilingual Plane with a
// utf8mb4 column fails (1270, illegal mix of collations), on every retry.
// The DSN's collation is kept if it is utf8mb4's; another cannot go with
// that charset, and is an ErrDSN.
func talkUtf8mb4(cfg *mysql.Config) error {
	if c := cfg.Collation; c != "" && !strings.HasPrefix(c, "utf8mb4_") {
		return dsnError{fmt.Errorf("mysql dsn: collation %s is not a utf8mb4 collation (the schema's charset; leave it out, or name one such as utf8mb4_general_ci)", c)}
	}
	if err := cfg.Apply(mysql.Charset("utf8mb4", cfg.Collation)); err != nil {
		return dsnError{fmt.Errorf("mysql dsn: charset utf8mb4: %w", err)}
	}
	return nil
}

// CheckDSN reports whether the driver can parse dsn: nil, or an ErrDSN.
// It connects to nothing.
func CheckDSN(dsn string) error {
	_, err := parseDSN(dsn)
	return err
}

func parseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, dsnError{fmt.Errorf("parse mysql dsn: %w", err)}
	}
	if err := talkUtf8mb4(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ErrDSN is what an error of Open, OpenLazily, CheckDSN or Await is when
// the DSN itself is wrong: the driver cannot parse it, or the server
// refuses it (access denied: a user or password it does not take, or a
// database the user may not use; an unknown database; a collation or
// charset it does not have). Trying again does
// not help until the DSN, or the server's grants, is changed, so a daemon
// that meets it stops as on a wrong configuration (exit 78, which the
// units do not restart) rather than waiting for it.
var ErrDSN = errors.New("the database DSN is wrong")

// dsnError is an error that is ErrDSN, with the text of the error it wraps.
type dsnError struct{ err error }

func (e dsnError) Error() string        { return e.err.Error() }
func (e dsnError) Unwrap() error        { return e.err }
func (e dsnError) Is(target error) bool { return target == ErrDSN }

// refusingDSN lists the server's errors that refuse the DSN itself: access
// denied (for the user, to the database, without the password the user's
// plugin wants), unknown database, and a collation or charset the server
// does not have (a MySQL 8 one such as utf8mb4_0900_ai_ci on MariaDB).
var refusingDSN = map[uint16]bool{1044: true, 1045: true, 1049: true, 1698: true, 1115: true, 1273: true}

// ping checks that db, named name (user@address/database, or ""),
// answers within openTimeout; an error the server answers that refuses
// the DSN is an ErrDSN.
func ping(ctx context.Context, db *sql.DB, name string) error {
	pctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	err := db.PingContext(pctx)
	if err == nil {
		return nil
	}
	if name != "" {
		err = fmt.Errorf("ping mysql %s: %w", name, err)
	} else {
		err = fmt.Errorf("ping mysql: %w", err)
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) && refusingDSN[me.Number] {
		return dsnError{err}
	}
	return err
}

// Backoff of Await: the first retry after awaitMin, each wait twice the
// one before, up to awaitMax, less a random part of up to a half (so that
// the daemons of a host do not all try at once).
const (
	awaitMin = time.Second
	awaitMax = 30 * time.Second
)

// Await waits until db answers a ping, for a daemon that starts while the
// database is down (at boot, before MariaDB, or during an outage): rather
// than fail, which would have systemd restart it in a loop for as long as
// the database is away, it tries again with a backoff from one second to
// thirty, and logs each failure as a warning, with the error and when it
// tries next. Each attempt is bounded as Open's is. It returns nil once
// the database answers, an ErrDSN at once when the server refuses the DSN
// (no wait makes it take it), and ctx's error when ctx ends first.
func Await(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := ping(ctx, db, "")
		if err == nil {
			if attempt > 1 {
				log.Info("the database answers", "attempts", attempt, "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrDSN) {
			return err
		}
		d := awaitMin << min(attempt-1, 16)
		if d > awaitMax || d <= 0 {
			d = awaitMax
		}
		d -= rand.N(d/2 + 1)
		log.Warn("waiting for the database", "err", err, "attempt", attempt, "retry_in", d.Round(time.Millisecond))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Option configures Open.
type Option func(*mysql.Config)

// WithLogger has the driver log what it logs by itself (a pooled
// connection found broken, as after a database restart, a packet out of
// sequence) through log, as warnings, instead of its default: plain text
// on stderr, whatever the process's log level and format.
func WithLogger(log *slog.Logger) Option {
	return func(c *mysql.Config) { c.Logger = driverLogger{log} }
}

// driverLogger is a mysql.Logger over slog.
type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Print(v ...any) {
	d.log.Warn("mysql driver", "detail", strings.TrimSpace(fmt.Sprint(v...)))
}

// MaxPacket returns the server's max_allowed_packet: the largest statement,
// with its interpolated values, that the server accepts.
func MaxPacket(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&n); err != nil {
		return 0, fmt.Errorf("read max_allowed_packet: %w", err)
	}
	return n, nil
}
