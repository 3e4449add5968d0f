package main

import (
	"strings"
	"testing"
)

// TestListenerEndpointPathsAreConfig: an endpoint path http.ServeMux
// cannot register crashed the listener with a panic at start, and two
// endpoints on one path stopped it with exit 1, which the unit restarts
// every two seconds for ever; check-config passed both. Each is a wrong
// configuration: refused by check-config, exit 78 at start.
func TestListenerEndpointPathsAreConfig(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	const shared = "bus: {url: 'amqp://guest:guest@127.0.0.1:1/'}\nlistener:\n  publisher: {spool_path: SPOOL}\n  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n"
	for name, body := range map[string]string{
		"space":   "  events: {path: /v1/my events}\n",
		"brace":   "  alertmanager: {path: '/v1/{x', mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		"twice":   "  events: {path: /v1/hooks}\n  alertmanager: {path: /v1/hooks, mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		"default": "  events: {path: /v1/alertmanager}\n  alertmanager: {mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, dir, name+".yaml", strings.ReplaceAll(shared, "SPOOL", dir+"/"+name+".spool")+body)
			loaded, err := loadConfig(cfg, needBus)
			if err != nil {
				t.Fatal(err)
			}
			if err := loaded.validate(); err == nil {
				t.Error("check-config accepted it")
			}
			checkDaemonExit(t, bin, "listener", cfg, exitConfig)
		})
	}
}
