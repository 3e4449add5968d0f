// Command causeway is Causeway's one binary: every component (persister,
// processor, driver, listener, notifier) is a subcommand, and so is every
// operator tool (migrate, check-config, templates, rca, replay, ...).
//
// main only parses flags and signals and calls into packages; the work lives
// in those packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func main() { os.Exit(run()) }

func run() int {
	// A second SIGINT or SIGTERM exits at once, from the signal's
	// goroutine (see stopSignals).
	ctx, stop := withStopSignals(context.Background(), os.Exit)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	if line, code, ok := interrupted(ctx, err); ok {
		fmt.Fprintln(os.Stderr, line)
		return code
	}
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "causeway:", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(os.Stderr, "causeway:", err)
		return 1
	}
	return 0
}

// exitError carries a specific exit code (and an optional message) out of a
// command, for commands whose exit status means something (validate, test).
type exitError struct {
	code int
	msg  string
	// err, when set, is the error msg says, for errors.Is.
	err error
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

func (e *exitError) Unwrap() error { return e.err }
