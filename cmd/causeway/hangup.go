package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// logHangups keeps SIGHUP from ending a daemon until the returned stop is
// called. The daemons cannot reload their configuration: by default SIGHUP
// would end the process with a status systemd counts as a clean stop (so no
// restart), and a `kill -HUP` meant as a reload would take the component
// down. Each hangup is logged instead, saying what to do.
func logHangups(log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ch:
				log.Warn("reload not supported; restart to apply configuration", "signal", "SIGHUP")
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-exited
	}
}
