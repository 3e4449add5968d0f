package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
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
type stopSignals struct {
	mu sync.Mutex
	// forced says that the stop is forced, before the exit.
	forced func(sig syscall.Signal)
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
				if !stopping {
					stopping = true
					cancel()
					continue
				}
				n, _ := sig.(syscall.Signal)
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
