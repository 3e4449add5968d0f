package main

import (
	"strings"
	"testing"
)

// TestListenerWrongConfigExits78: an endpoint path http.ServeMux
// cannot register crashed the listener with a panic at start, and two
// endpoints on one path, or a listen address that is not host:port,
// stopped it with exit 1, which the unit restarts every two seconds for
// ever; check-config passed them all. Each is a wrong
// configuration: refused by check-config, exit 78 at start.
func TestListenerWrongConfigExits78(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	const shared = "bus: {url: 'amqp://guest:guest@127.0.0.1:1/'}\nlistener:\n  publisher: {spool_path: SPOOL}\n"
	for name, body := range map[string]string{
		"space": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  events: {path: /v1/my events}\n",
		"brace": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  alertmanager: {path: '/v1/{x', mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		"twice": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  events: {path: /v1/hooks}\n  alertmanager: {path: /v1/hooks, mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		// net.Listen refused it in Run: exit 1, restarted for ever.
		"listen":  "  server: {listen: '8091', auth: {insecure_no_auth: true}}\n  events: {}\n",
		"default": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  events: {path: /v1/alertmanager}\n  alertmanager: {mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		// The webhook's own limit over the memory cap: no such body
		// could be taken (its default 32 MiB over a cap of 16 MiB).
		"inflight": "  server: {listen: '127.0.0.1:0', max_body_bytes: 1048576, max_inflight_bytes: 16777216, auth: {insecure_no_auth: true}}\n  alertmanager: {mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
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
