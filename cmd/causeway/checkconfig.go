package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// validate checks every section of the file the way its component does when
// it starts, and joins every problem, each named by its YAML path.
func (cfg *fileConfig) validate() error {
	var errs []error
	add := func(section string, err error) {
		if err != nil {
			errs = append(errs, prefixErr(section, err))
		}
	}
	add("persister", cfg.Persister.Config.WithDefaults().Validate())
	if cfg.sections["processor"] {
		pc := cfg.Processor
		pc.SetDefaults()
		add("processor", pc.Validate())
	}
	if s := cfg.Drivers.Static; s != nil {
		add("drivers.static", s.validate())
	}
	if a := cfg.Drivers.Alertmanager; a != nil {
		add("drivers.alertmanager", a.Validate())
	}
	if cfg.Drivers.Static != nil || cfg.Drivers.Alertmanager != nil {
		add("drivers.publisher", cfg.Drivers.Publisher.config(cfg.Bus).Validate())
	} else if cfg.sections["drivers"] {
		// The drivers refuse to start with nothing to run.
		add("drivers", errors.New("no driver configured (static or alertmanager)"))
	}
	l := cfg.Listener
	if l.Alertmanager != nil || l.Events != nil {
		add("listener.server", l.Server.Validate())
	}
	if l.Alertmanager != nil {
		add("listener.alertmanager", l.Alertmanager.Validate())
	}
	if l.Events != nil {
		add("listener.events", l.Events.Validate())
	}
	if l.OpenStack != nil {
		add("listener.openstack", l.OpenStack.Validate())
	}
	add("listener", l.checkEndpoints())
	if l.Alertmanager != nil || l.Events != nil || l.OpenStack != nil {
		add("listener.publisher", l.Publisher.config(cfg.Bus).Validate())
	} else if cfg.sections["listener"] {
		// As the listener refuses to start.
		add("listener", errors.New("no endpoint configured (alertmanager, events or openstack)"))
	}
	// A notifier runs from a file without a notifier section (it
	// inherits the database's), so the section is checked when it is
	// there: a listener's or a driver's host has no database to inherit.
	if cfg.sections["notifier"] {
		nc := cfg.Notifier
		nc.SetDefaults()
		if err := nc.Validate(); err != nil {
			errs = append(errs, err) // each problem names its path (notifier.…)
		}
	}
	return errors.Join(errs...)
}

func newCheckConfigCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "check-config",
		Short: "Load and validate the configuration file as the daemons do; report every problem",
		Long: "Load and validate the configuration file as the daemons do, and open every secret *_file it\n" +
			"names (never printing what they hold); report every problem by its YAML path.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.configPath, 0)
			if err == nil {
				err = errors.Join(cfg.require(cfg.sectionNeeds()), cfg.validate(), cfg.checkFiles())
			}
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("config %s is not valid:\n%v", g.configPath, err)}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "config %s is valid\n", g.configPath)
			return err
		},
	}
}
