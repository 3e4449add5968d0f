package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
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
// DATETIME(6) column of the schema holds UTC. Unless the DSN sets
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
func Open(ctx context.Context, dsn string, opts ...Option) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
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
		return nil, fmt.Errorf("mysql connector: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxLifetime(connMaxLifetime)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	pctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ping mysql %s@%s/%s: %w", cfg.User, cfg.Addr, cfg.DBName, err)
	}
	return db, nil
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
