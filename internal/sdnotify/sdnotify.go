// Package sdnotify tells systemd about a daemon's lifecycle (Type=notify
// units): READY once the component has started (it connects, and
// reconnects, to the broker and the database by itself; a listener and a
// processor have bound their ports first; a processor's readiness to
// answer is its /readyz), STOPPING on shutdown, and watchdog
// pings while its health check passes. Outside systemd (NOTIFY_SOCKET
// unset) every call is a no-op.
package sdnotify

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready reports readiness to systemd.
func Ready(logger *slog.Logger) { send(logger, daemon.SdNotifyReady) }

// Stopping reports that the daemon is shutting down.
func Stopping(logger *slog.Logger) { send(logger, daemon.SdNotifyStopping) }

// Status sets the one-line status shown by systemctl status.
func Status(logger *slog.Logger, status string) { send(logger, "STATUS="+status) }

func send(logger *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// Watchdog pings systemd's watchdog at half its interval for as long as
// healthy (nil: always) returns true and ctx lives. A component whose
// health check fails, or whose process hangs, stops the pings, and systemd
// restarts it. It returns at once when the watchdog is off.
func Watchdog(ctx context.Context, logger *slog.Logger, healthy func() bool) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("read watchdog settings", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy == nil || healthy() {
				send(logger, daemon.SdNotifyWatchdog)
			} else {
				logger.Warn("health check failed: withholding the watchdog ping")
			}
		}
	}
}
