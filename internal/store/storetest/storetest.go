// Package storetest gives integration tests a fresh, migrated MariaDB
// database of their own.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/causeway/causeway/internal/store"
)

// EnvDSN names the environment variable with the server's DSN, without a
// database (e.g. root@tcp(127.0.0.1:3306)/).
const EnvDSN = "CAUSEWAY_TEST_MYSQL_DSN"

// ServerDSN returns the DSN of the test server. Without EnvDSN the test is
// skipped, or fails when the CI variable is set, so CI cannot pass by
// skipping.
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set (required when CI is set)", EnvDSN)
		}
		t.Skipf("%s is not set; skipping MariaDB integration test", EnvDSN)
	}
	return dsn
}

// NewDB creates a database causeway_test_<hex> on the test server,
// migrates it, drops it in t.Cleanup, and returns its DSN.
func NewDB(t testing.TB) string {
	t.Helper()
	dsn := NewEmptyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	defer db.Close()
	if _, err := store.Migrate(ctx, db); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return dsn
}

// NewDBRoundingTimes is NewDB whose sessions round a time finer than a
// column's precision (sql_mode TIME_ROUND_FRACTIONAL) instead of
// truncating it: for tests that a bound is sent at the columns' precision.
func NewDBRoundingTimes(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(NewDB(t))
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["sql_mode"] = "'STRICT_TRANS_TABLES,TIME_ROUND_FRACTIONAL'"
	return cfg.FormatDSN()
}

// NewEmptyDB is NewDB without the migration: for tests of the migrator.
func NewEmptyDB(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(ServerDSN(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvDSN, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "causeway_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.DBName = ""
	admin, err := store.Open(ctx, cfg.FormatDSN())
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
