package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version  int
	Name     string // file name, e.g. 0001_event_log.sql
	Checksum string // hex SHA-256 of the file
	stmts    []string
}

// ErrMigrationChanged reports that a migration already applied to the
// database differs from the file of the same version in this binary.
var ErrMigrationChanged = errors.New("applied migration changed")

// ErrSchemaAhead reports that the database holds migrations this binary
// does not have: a newer release migrated it.
var ErrSchemaAhead = errors.New("the database schema is newer than this binary")

// migrateLockTimeout bounds how long Migrate waits for another process
// migrating the same database.
const migrateLockTimeout = 60 * time.Second

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	return loadMigrations(migrationFS, "migrations")
}

func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_lower_snake.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("migration file %s: versions start at 0001", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration files %s and %s share version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		stmts, err := splitStatements(string(b))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: e.Name(), Checksum: hex.EncodeToString(sum[:]), stmts: stmts})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// splitStatements splits a migration into statements: each ends with a
// semicolon at the end of a line; whole-line "--" comments are dropped.
func splitStatements(src string) ([]string, error) {
	var stmts []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if strings.HasPrefix(strings.TrimSpace(line), "--") || strings.TrimSpace(line) == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(line, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cur.String()) != "" {
		return nil, errors.New("last statement does not end with ';'")
	}
	if len(stmts) == 0 {
		return nil, errors.New("no statements")
	}
	return stmts, nil
}

// Migrate applies the embedded migrations that the database lacks, in
// version order, and returns the versions it applied.
//
// It is idempotent and safe when several processes migrate the same
// database at once: they serialise on a named lock (GET_LOCK, scoped to the
// database), and each re-reads schema_migrations once it holds the lock.
// MariaDB commits DDL implicitly, so a migration that fails half-way is not
// rolled back; migrations are therefore written to be re-runnable
// (CREATE TABLE IF NOT EXISTS, INSERT IGNORE, ...) and the failed one is
// simply run again. A migration whose file changed after it was applied is
// an error (ErrMigrationChanged): fix forward with a new file instead. A
// database holding migrations this binary lacks, applied by a newer
// release, is an error too (ErrSchemaAhead), and nothing is applied to it.
func Migrate(ctx context.Context, db *sql.DB) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	return migrate(ctx, db, ms)
}

func migrate(ctx context.Context, db *sql.DB, ms []Migration) ([]int, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: get connection: %w", err)
	}
	defer conn.Close()
	unlock, err := namedLock(ctx, conn, "migrate", migrateLockTimeout)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer unlock()

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT          NOT NULL,
    name       VARCHAR(255) NOT NULL,
    checksum   CHAR(64)     NOT NULL,
    applied_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (version)
) ENGINE=InnoDB`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := newerMigrations(applied, ms); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}

	var done []int
	for _, m := range ms {
		if a, ok := applied[m.Version]; ok {
			if sum := a.checksum; sum != m.Checksum {
				return done, fmt.Errorf("migrate: %s: %w (checksum %s in the database, %s in this binary)", m.Name, ErrMigrationChanged, short(sum), short(m.Checksum))
			}
			continue
		}
		for i, s := range m.stmts {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				return done, fmt.Errorf("migrate: %s statement %d: %w", m.Name, i+1, err)
			}
		}
		if _, err := conn.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))",
			m.Version, m.Name, m.Checksum); err != nil {
			return done, fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		done = append(done, m.Version)
	}
	return done, nil
}

// appliedMigration is a row of schema_migrations.
type appliedMigration struct {
	name, checksum string
}

// appliedMigrations reads schema_migrations by version.
func appliedMigrations(ctx context.Context, conn *sql.Conn) (map[int]appliedMigration, error) {
	rows, err := conn.QueryContext(ctx, "SELECT version, name, checksum FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]appliedMigration{}
	for rows.Next() {
		var v int
		var a appliedMigration
		if err := rows.Scan(&v, &a.name, &a.checksum); err != nil {
			return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
		}
		applied[v] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	return applied, nil
}

// newerMigrations refuses a database holding migrations that ms (this
// binary's) lacks: a newer release migrated it, and this release's
// components would write on it in the shape it had before them. Nothing
// is applied to it; it is not "up to date" either.
func newerMigrations(applied map[int]appliedMigration, ms []Migration) error {
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.Version] = true
	}
	var newer []int
	for v := range applied {
		if !known[v] {
			newer = append(newer, v)
		}
	}
	if len(newer) == 0 {
		return nil
	}
	sort.Ints(newer)
	names := make([]string, len(newer))
	for i, v := range newer {
		names[i] = applied[v].name
	}
	return fmt.Errorf("%w: it holds %s, which this binary does not have (a newer release applied them); "+
		"migrate and run it with that release's binary", ErrSchemaAhead, strings.Join(names, ", "))
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
