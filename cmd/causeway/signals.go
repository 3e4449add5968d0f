package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

// stopSignals is how SIGINT and SIGTERM end a command. The first ends its
// context: a daemon stops cleanly (stops intake, finishes what is in
// flight, commits, acks, within its grace), a command gives up. A second,
// while the command is still stopping, ends the process at once, as an
// operator who presses Ctrl-C again, or sends SIGTERM again, expects: after
// one line saying that the stop was forced (a daemon's says what it may
// leave undrained), it exits 128 + the signal's number, 130 for SIGINT and
// 143 for SIGTERM, the status a shell reports for a process that signal
// killed. The units count both as a clean stop (SuccessExitStatus), as
// systemd does a death by SIGINT or SIGTERM: the operator asked for it.
//
// A command that is no daemon, and that the first signal ends with an
// error (it gave up: "context canceled", or whatever its work failed
// with once cancelled), exits the same way: one line saying it was
// interrupted, and 128 + the signal's number (interrupted). A daemon's
// first signal is a clean stop, whose exit status is its own.
type stopSignals struct {
	mu sync.Mutex
	// forced says that the stop is forced, before the exit.
	forced func(sig syscall.Signal)
	// first is the first signal, 0 before it.
	first syscall.Signal
	// daemon says that the command says itself how its stop went
	// (onForcedStop): an error after the first signal is no interruption.
	daemon bool
}

type stopSignalsKey struct{}

// withStopSignals returns ctx ended by the first SIGINT or SIGTERM; the
// second calls the forced line and then exit(128 + its number). stop ends
// the watch (a signal then has its default effect).
func withStopSignals(parent context.Context, exit func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	s := &stopSignals{forced: func(sig syscall.Signal) {
		fmt.Fprintf(os.Stderr, "causeway: stop forced by a second %s: exiting at once, without finishing the stop\n", signalName(sig))
	}}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		stopping := false
		for {
			select {
			case sig := <-ch:
				n, _ := sig.(syscall.Signal)
				if !stopping {
					stopping = true
					s.mu.Lock()
					s.first = n
					s.mu.Unlock()
					cancel()
					continue
				}
				s.mu.Lock()
				forced := s.forced
				s.mu.Unlock()
				forced(n)
				exit(128 + int(n))
				return
			case <-done:
				return
			}
		}
	}()
	return context.WithValue(ctx, stopSignalsKey{}, s), func() {
		signal.Stop(ch)
		close(done)
		<-exited
		cancel()
	}
}

// onForcedStop sets the line a forced stop of the command running with
// ctx writes (a daemon's, in its log's format); nothing when ctx does not
// come from withStopSignals.
func onForcedStop(ctx context.Context, forced func(sig syscall.Signal)) {
	s, ok := ctx.Value(stopSignalsKey{}).(*stopSignals)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced = forced
	s.daemon = true
}

// interrupted is what a command that ended with err says and exits with
// when the first SIGINT or SIGTERM interrupted it (see stopSignals): one
// line, and 128 + the signal's number. ok is false when no signal came, err
// is nil, or the command is a daemon (its stop is its own to tell).
func interrupted(ctx context.Context, err error) (line string, code int, ok bool) {
	s, found := ctx.Value(stopSignalsKey{}).(*stopSignals)
	if !found || err == nil {
		return "", 0, false
	}
	s.mu.Lock()
	sig, daemon := s.first, s.daemon
	s.mu.Unlock()
	if sig == 0 || daemon {
		return "", 0, false
	}
	line = "causeway: interrupted by " + signalName(sig)
	// What the command failed with once cancelled is no news, unless it
	// says more than the cancellation.
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		if ee.msg != "" && !errors.Is(err, context.Canceled) {
			line += ": " + firstLine(ee.msg)
		}
	case !errors.Is(err, context.Canceled):
		line += ": " + firstLine(err.Error())
	}
	return line, 128 + int(sig), true
}

// firstLine is s up to its first line break.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// signalName is the name of the stop signals as operators write them.
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}
