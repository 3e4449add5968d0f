package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("Error 1146: table doesn't exist"), false},
		{&mysql.MySQLError{Number: 1064, Message: "syntax"}, false},
		{fmt.Errorf("list snapshots: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("read: %w", driver.ErrBadConn), true},
		{fmt.Errorf("read: %w", mysql.ErrInvalidConn), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{fmt.Errorf("scan: %w", &mysql.MySQLError{Number: 1205, Message: "lock wait timeout"}), true},
		{&mysql.MySQLError{Number: 1213, Message: "deadlock"}, true},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
