package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/listeners"
	lam "github.com/causeway/causeway/listeners/alertmanager"
	"github.com/causeway/causeway/listeners/events"
	"github.com/causeway/causeway/listeners/openstack"
	"github.com/spf13/cobra"
)

func newListenerCmd(g *globalFlags) *cobra.Command {
	var metrics metricsFlag
	return metrics.register(&cobra.Command{
		Use:   "listener",
		Short: "Run the listeners: Alertmanager webhooks, the events API, OpenStack notifications",
		Args:  cobra.NoArgs,
		RunE: daemon(g, listenerUndrained, func(cmd *cobra.Command, _ []string) error {
			defer logHangups(g.logger())()
			cfg, err := loadConfig(g.configPath, needBus)
			if err != nil {
				return err
			}
			warnLooseSecrets(g.logger(), cfg.secretFiles(), "bus", "listener")
			lc := cfg.Listener
			log := g.logger()
			reg := newRegistry()
			var endpoints []listeners.Endpoint
			if lc.Alertmanager != nil {
				w, err := lam.New(*lc.Alertmanager)
				if err != nil {
					return prefixErr("listener.alertmanager", err)
				}
				endpoints = append(endpoints, w.Endpoint())
			}
			if lc.Events != nil {
				a, err := events.New(*lc.Events)
				if err != nil {
					return prefixErr("listener.events", err)
				}
				endpoints = append(endpoints, a.Endpoint())
			}
			if len(endpoints) == 0 && lc.OpenStack == nil {
				return invalidConfig(errors.New("listener: no endpoint configured (alertmanager, events or openstack)"))
			}
			if err := lc.checkEndpoints(); err != nil {
				return prefixErr("listener", err)
			}
			// The sections are validated apart from the constructors,
			// which also open the spool and read the credentials' files:
			// a file not there yet is no wrong configuration (exit 1, and
			// the unit restarts the listener), a value refused is (78).
			pcfg := lc.Publisher.config(cfg.Bus)
			if err := pcfg.Validate(); err != nil {
				return prefixErr("listener.publisher", err)
			}
			if len(endpoints) > 0 {
				if err := lc.Server.Validate(); err != nil {
					return prefixErr("listener.server", err)
				}
			}
			pub, err := bus.NewPublisher(pcfg, bus.Deps{Logger: log, Registerer: reg})
			if err != nil {
				return fmt.Errorf("listener.publisher: %w", err)
			}
			defer pub.Close()
			actors := []actor{{name: "publisher", run: pub.Run, alive: pub.Alive, drain: pub.Drain}}
			if len(endpoints) > 0 {
				// Bound before serve tells systemd READY=1: the units
				// ordered after the listener may send at once, and an
				// address taken fails the start rather than follow a
				// READY=1 with a failure.
				addr := cmp.Or(lc.Server.Listen, listeners.DefaultListen)
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					return fmt.Errorf("listener.server: listen on %s: %w", addr, err)
				}
				defer ln.Close() // closed already once the server has stopped
				srv, err := listeners.New(lc.Server, listeners.Deps{Publisher: pub, Endpoints: endpoints, Logger: log, Registerer: reg, Listener: ln})
				if err != nil {
					return fmt.Errorf("listener.server: %w", err)
				}
				actors = append(actors, actor{name: "http server", run: srv.Run, alive: srv.Alive})
			}
			if lc.OpenStack != nil {
				c, err := openstack.New(*lc.OpenStack, openstack.Deps{Publisher: pub, Logger: log, Registerer: reg})
				if err != nil {
					return prefixErr("listener.openstack", err)
				}
				actors = append(actors, actor{name: "openstack consumer", run: c.Run, alive: c.Alive})
			}
			return serve(cmd.Context(), log, reg, metrics.listen(cmd, lc.MetricsListen), actors...)
		}),
	})
}

// listenerUndrained is what a forced stop of a listener may leave: it
// answers 2xx once the events are fsynced in the spool, which the next
// start sends; the OpenStack consumer acks after its publish.
const listenerUndrained = "requests in flight get no answer, so their clients send them again; events accepted stay in the spool, sent at the next start; OpenStack notifications not yet acked are redelivered by the broker"

// checkEndpoints refuses two endpoints on one path, their defaults
// included (the server cannot serve both there), and a webhook body limit
// over the server's max_inflight_bytes (no such body could be taken).
func (l listenerSection) checkEndpoints() error {
	var errs []error
	if am := l.Alertmanager; am != nil {
		limit := cmp.Or(am.MaxBodyBytes, lam.DefaultMaxBodyBytes)
		if inflight := cmp.Or(l.Server.MaxInflightBytes, listeners.DefaultMaxInflightBytes); l.Server.MaxInflightBytes >= 0 && limit > inflight {
			errs = append(errs, fmt.Errorf("alertmanager.max_body_bytes: %d is over server.max_inflight_bytes (%d): such a body could never be taken", limit, inflight))
		}
	}
	if l.Alertmanager != nil && l.Events != nil {
		am, ev := cmp.Or(l.Alertmanager.Path, lam.DefaultPath), cmp.Or(l.Events.Path, events.DefaultPath)
		if am == ev {
			errs = append(errs, fmt.Errorf("alertmanager.path and events.path: both are %s; each endpoint needs a path of its own", am))
		}
	}
	return errors.Join(errs...)
}
