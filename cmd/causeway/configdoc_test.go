package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/drivers"
	"github.com/causeway/causeway/drivers/alertmanager"
	"github.com/causeway/causeway/drivers/alertmap"
	"github.com/causeway/causeway/drivers/static"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/listeners"
	lam "github.com/causeway/causeway/listeners/alertmanager"
	"github.com/causeway/causeway/listeners/events"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
)

// exampleNoDefault are the keys of deploy/causeway.yaml whose value is the
// site's, not a default: required ones, addresses and paths of the
// example's host, and /metrics addresses (left out, none is served, as
// the file's header says).
var exampleNoDefault = map[string]bool{
	"database.dsn": true, "bus.url": true,
	"processor.node_id": true, "processor.data_dir": true, "processor.raft.bind_addr": true,
	"processor.api.listen": true, "processor.snapshot.policy": true,
	"drivers.publisher.spool_path": true, "drivers.static.directory": true, "drivers.alertmanager.url": true,
	"listener.publisher.spool_path": true, "notifier.secrets": true,
	"persister.metrics_listen": true, "drivers.metrics_listen": true, "listener.metrics_listen": true, "notifier.metrics_listen": true,
}

// exampleDefaults are the defaults of the keys that a component applies
// when it starts, out of reach of the sections' exported defaulting (see
// codeDefault).
func exampleDefaults() map[string]any {
	pub := map[string]any{
		"max_in_flight": bus.DefaultMaxInFlight, "spool_max_bytes": int64(bus.DefaultSpoolMaxBytes),
		"spool_max_events": bus.DefaultSpoolMaxEvents,
	}
	schedule := map[string]any{
		"interval": drivers.DefaultInterval, "changes_interval": time.Duration(0), "jitter": float64(0),
		"backoff_min": drivers.DefaultBackoffMin, "backoff_max": drivers.DefaultBackoffMax,
		"pull_timeout": drivers.DefaultPullTimeout, "batch_size": drivers.DefaultBatchSize,
	}
	d := map[string]any{
		"bus.reconnect_min":                        bus.DefaultReconnectMin,
		"bus.reconnect_max":                        bus.DefaultReconnectMax,
		"processor.api.shutdown_grace":             api.DefaultShutdownGrace,
		"processor.api.max_graph_reads":            api.DefaultMaxGraphReads,
		"processor.api.max_history_queries":        api.DefaultMaxHistoryQueries,
		"processor.api.max_unsent_bytes":           int64(api.DefaultMaxUnsentBytes),
		"processor.api.max_page_size":              api.DefaultMaxPageSize,
		"processor.reconstruct.page_size":          snapshot.DefaultReconstructPageSize,
		"drivers.static.source":                    static.DefaultSource,
		"drivers.static.poll_interval":             static.DefaultPollInterval,
		"drivers.static.settle":                    static.DefaultSettle,
		"drivers.static.allow_empty":               false,
		"drivers.alertmanager.source":              alertmanager.DefaultSource,
		"drivers.alertmanager.include_silenced":    false,
		"drivers.alertmanager.include_inhibited":   false,
		"drivers.alertmanager.timeout":             alertmanager.DefaultTimeout,
		"drivers.alertmanager.max_body_size":       int64(alertmanager.DefaultMaxBodySize),
		"drivers.alertmanager.startup_grace":       alertmanager.DefaultStartupGrace,
		"drivers.alertmanager.interval":            drivers.DefaultInterval,
		"drivers.alertmanager.mapping.alarm_type":  alertmap.DefaultAlarmType,
		"listener.server.listen":                   listeners.DefaultListen,
		"listener.server.read_header_timeout":      listeners.DefaultReadHeaderTimeout,
		"listener.server.read_timeout":             listeners.DefaultReadTimeout,
		"listener.server.write_timeout":            listeners.DefaultWriteTimeout,
		"listener.server.idle_timeout":             listeners.DefaultIdleTimeout,
		"listener.server.shutdown_timeout":         listeners.DefaultShutdownTimeout,
		"listener.server.max_body_bytes":           int64(listeners.DefaultMaxBodyBytes),
		"listener.server.max_inflight_bytes":       int64(listeners.DefaultMaxInflightBytes),
		"listener.alertmanager.max_body_bytes":     int64(lam.DefaultMaxBodyBytes),
		"listener.server.retry_after":              listeners.DefaultRetryAfter,
		"listener.server.max_clock_skew":           listeners.DefaultMaxClockSkew,
		"listener.alertmanager.source":             lam.DefaultSource,
		"listener.alertmanager.path":               lam.DefaultPath,
		"listener.alertmanager.mapping.alarm_type": alertmap.DefaultAlarmType,
		"listener.events.source":                   events.DefaultSource,
		"listener.events.path":                     events.DefaultPath,
		"listener.events.alarm_type":               events.DefaultAlarmType,
		"listener.events.resource_type":            events.DefaultResourceType,
	}
	for k, v := range pub {
		d["drivers.publisher."+k] = v
		d["listener.publisher."+k] = v
	}
	for k, v := range schedule {
		d["drivers.static."+k] = v
	}
	return d
}

// defaultComment is a "# default X" comment on a key's line.
var defaultComment = regexp.MustCompile(`\bdefault ("[^"]*"|[^\s,;)]+)`)

// TestExampleConfigDefaults: deploy/causeway.yaml says that a key left
// out takes its default, and that the value shown is that default unless
// the comment on its line gives it ("# default X"). Every key of the file
// is checked so against the code: the defaults that the persister,
// processor and notifier sections apply (the file with the key left out,
// defaults set), and the components' exported defaults for the others. A
// key without a default is listed in exampleNoDefault; the items of lists
// are examples, not defaults.
func TestExampleConfigDefaults(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/causeway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	table := exampleDefaults()
	used := map[string]bool{}
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			if path != "" {
				key = path + "." + key
			}
			if exampleNoDefault[key] {
				used[key] = true
				continue
			}
			switch val.Kind {
			case yaml.MappingNode:
				walk(key, val)
				continue
			case yaml.SequenceNode:
				continue
			}
			want, ok := table[key]
			if ok {
				used[key] = true
			} else if want, ok = codeDefault(t, raw, key); !ok {
				t.Errorf("%s: no default known; list it in exampleNoDefault or exampleDefaults", key)
				continue
			}
			shown, text := val.Value, "the value shown"
			if m := defaultComment.FindStringSubmatch(val.LineComment); m != nil {
				shown, text = m[1], "its comment's default"
			}
			got := reflect.New(reflect.TypeOf(want))
			if err := yaml.Unmarshal([]byte(shown), got.Interface()); err != nil {
				t.Errorf("%s: %s, %s, does not decode as %T: %v", key, text, shown, want, err)
				continue
			}
			if !reflect.DeepEqual(got.Elem().Interface(), want) {
				t.Errorf("%s: %s is %s, the default is %v", key, text, shown, want)
			}
		}
	}
	walk("", doc.Content[0])
	for k := range table {
		if !used[k] {
			t.Errorf("exampleDefaults lists %s, which deploy/causeway.yaml does not set", k)
		}
	}
	for k := range exampleNoDefault {
		if !used[k] {
			t.Errorf("exampleNoDefault lists %s, which deploy/causeway.yaml does not set", k)
		}
	}
}

// codeDefault is the value that the key at path takes when the file raw
// leaves it out, for the sections whose defaults are exported (persister,
// processor, notifier): the rest of the file is kept, since some defaults
// follow other keys (prefetch follows batch_size).
func codeDefault(t *testing.T, raw []byte, path string) (any, bool) {
	t.Helper()
	keys := strings.Split(path, ".")
	var section any
	switch keys[0] {
	case "persister", "processor", "notifier":
	default:
		return nil, false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if !removeKey(doc.Content[0], keys) {
		t.Fatalf("%s: not in the file", path)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := decodeConfig(out)
	if cfg == nil {
		t.Fatalf("the file without %s: %v", path, err)
	}
	switch keys[0] {
	case "persister":
		section = cfg.Persister.Config.WithDefaults()
	case "processor":
		pc := cfg.Processor
		pc.SetDefaults()
		section = pc
	case "notifier":
		nc := cfg.Notifier
		nc.SetDefaults()
		section = nc
	}
	v, ok := fieldAt(reflect.ValueOf(section), keys[1:])
	if !ok {
		return nil, false
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, false
		}
		v = v.Elem()
	}
	return v.Interface(), true
}

// removeKey deletes the key at path from the mapping m.
func removeKey(m *yaml.Node, path []string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return true
		}
		return removeKey(m.Content[i+1], path[1:])
	}
	return false
}

// fieldAt is the field of the struct v at the YAML path, through inline
// fields.
func fieldAt(v reflect.Value, path []string) (reflect.Value, bool) {
	if len(path) == 0 {
		return v, true
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	for i := 0; i < v.NumField(); i++ {
		name, opts, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if opts == "inline" {
			if f, ok := fieldAt(v.Field(i), path); ok {
				return f, true
			}
			continue
		}
		if name == path[0] {
			return fieldAt(v.Field(i), path[1:])
		}
	}
	return reflect.Value{}, false
}
