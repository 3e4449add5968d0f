package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/causeway/causeway/processor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func newProcessorCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "processor",
		Short: "Run a processor node: raft election, log following, leader duties, the live HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadProcessorConfig(g.configPath)
			if err != nil {
				return err
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			p, err := processor.New(cfg, processor.Deps{Logger: g.logger(), Registerer: reg, Gatherer: reg})
			if err != nil {
				return err
			}
			return p.Run(cmd.Context())
		},
	}
}

// loadProcessorConfig reads the "processor" section of the YAML file,
// strictly (unknown keys are errors).
func loadProcessorConfig(path string) (processor.Config, error) {
	var cfg processor.Config
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &top); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	sec, ok := top["processor"]
	if !ok {
		return cfg, fmt.Errorf("config %s: no processor section", path)
	}
	body, err := yaml.Marshal(&sec)
	if err != nil {
		return cfg, fmt.Errorf("config %s: processor: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("config %s: processor: %w", path, err)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: processor: %w", path, err)
	}
	return cfg, nil
}
