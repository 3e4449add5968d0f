package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"

	"github.com/go-sql-driver/mysql"
)

// MariaDB error numbers that a later try may not meet.
const (
	erConCount        = 1040 // too many connections
	erServerShutdown  = 1053
	erLockWaitTimeout = 1205
	erLockDeadlock    = 1213
)

// Transient reports whether err is a failure of the database that may
// pass: the server unreachable or restarting, a connection lost, a
// deadline, a lock wait or deadlock, too many connections. What it does
// not recognise (a bad statement, a corrupt row) is for a caller to treat
// as permanent.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if me, ok := errors.AsType[*mysql.MySQLError](err); ok {
		switch me.Number {
		case erConCount, erServerShutdown, erLockWaitTimeout, erLockDeadlock:
			return true
		}
	}
	return false
}
