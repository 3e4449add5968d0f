package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestLock: a held lock refuses a second session; Held sees the lease
// lost when its connection is killed (which releases the lock), and the
// lock can then be taken again.
func TestLock(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	lease, err := store.Lock(ctx, db, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Held(ctx); err != nil {
		t.Fatalf("Held right after Lock: %v", err)
	}
	if _, err := store.Lock(ctx, db, "test", 0); !errors.Is(err, store.ErrLockHeld) {
		t.Fatalf("second Lock: %v; want ErrLockHeld", err)
	}
	// Kill the lease's session from another one.
	var holder int64
	if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(CONCAT(DATABASE(), '.causeway.test'))").Scan(&holder); err != nil || holder == 0 {
		t.Fatalf("holder of the lock: %d, %v", holder, err)
	}
	if _, err := db.ExecContext(ctx, "KILL CONNECTION ?", holder); err != nil {
		t.Fatal(err)
	}
	if err := lease.Held(ctx); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("Held after its session was killed: %v; want ErrLockLost", err)
	}
	lease.Release()
	// The server ends a killed session (and frees its locks) a moment
	// after the client sees it gone: wait for the lock a little.
	again, err := store.Lock(ctx, db, "test", 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after the lease was lost: %v", err)
	}
	again.Release()
}
