// Command storm sends the local cluster's sample alarm storm — a top-of-rack
// switch losing its uplink, and the host and instance alerts that follow —
// to Causeway's Alertmanager webhook listener, as Alertmanager would (payload
// version 4, one notification per alert group). It then waits until the
// processors have deduced the instance alarms from the sample templates and
// prints the vitrage id of the deduced alarm on the instance named by
// -instance, for `causeway rca show`.
//
// It is a development tool of `make run` (deploy/dev/cluster.sh).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	lam "github.com/causeway/causeway/listeners/alertmanager"
	"github.com/causeway/causeway/processor/apiclient"
)

func main() { os.Exit(run()) }

func run() int {
	listener := flag.String("listener", "http://127.0.0.1:8091/v1/alertmanager", "webhook URL of the listener")
	listenerToken := flag.String("listener-token", "", "bearer token of the listener")
	apiURL := flag.String("api", "http://127.0.0.1:8081", "processor API URL")
	apiToken := flag.String("api-token", "", "processor API token")
	instance := flag.String("instance", "vm-01", "external id of the instance whose deduced alarm is printed")
	wait := flag.Duration("wait", 90*time.Second, "how long to wait for the deduced alarm")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	defer cancel()
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	for _, p := range payloads(start) {
		if err := post(ctx, *listener, *listenerToken, p); err != nil {
			fmt.Fprintln(os.Stderr, "storm:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "storm: sent %d %s alert(s) (group %s)\n", len(p.Alerts), p.CommonLabels["job"], p.GroupKey)
	}
	c, err := apiclient.New(*apiURL, *apiToken, 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		return 1
	}
	for {
		id, err := deducedAlarm(ctx, c, *instance)
		if err == nil {
			fmt.Println(id)
			return 0
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "storm: no deduced alarm on %s after %s: %v\n", *instance, *wait, err)
			return 1
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// payloads are the webhook notifications of the storm, in the order an
// Alertmanager would send them: the switch first, then what it caused.
func payloads(at time.Time) []lam.Payload {
	alert := func(labels map[string]string, summary string) lam.Alert {
		return lam.Alert{
			Status: "firing", Labels: labels, StartsAt: at,
			Annotations:  map[string]string{"summary": summary},
			GeneratorURL: "http://prometheus.local/graph",
			Fingerprint:  fmt.Sprintf("%016x", hash(labels)),
		}
	}
	group := func(job string, alerts ...lam.Alert) lam.Payload {
		return lam.Payload{
			Version: "4", GroupKey: `{}:{job="` + job + `"}`, Status: "firing", Receiver: "causeway",
			GroupLabels: map[string]string{"job": job}, CommonLabels: map[string]string{"job": job},
			ExternalURL: "http://alertmanager.local", Alerts: alerts,
		}
	}
	sw := group("snmp", alert(map[string]string{
		"alertname": "SwitchUplinkDown", "job": "snmp", "severity": "critical",
		"resource_type": "switch", "resource_id": "tor-1", "interface": "uplink0",
	}, "tor-switch-1 lost its uplink"))
	var hosts []lam.Alert
	for _, h := range []string{"compute-1", "compute-2"} {
		hosts = append(hosts, alert(map[string]string{
			"alertname": "HostNetworkLatencyHigh", "job": "node", "severity": "warning",
			"resource_type": "nova.host", "resource_id": h,
		}, h+" sees packet loss"))
	}
	var vms []lam.Alert
	for _, vm := range []string{"vm-01", "vm-02", "vm-03", "vm-04"} {
		vms = append(vms, alert(map[string]string{
			"alertname": "InstanceProbeFailed", "job": "blackbox", "severity": "critical",
			"resource_type": "nova.instance", "resource_id": vm,
		}, vm+" does not answer its HTTP probe"))
	}
	return []lam.Payload{sw, group("node", hosts...), group("blackbox", vms...)}
}

func hash(labels map[string]string) uint64 {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := uint64(14695981039346656037)
	for _, k := range keys {
		for _, b := range []byte(k + "=" + labels[k] + ",") {
			h = (h ^ uint64(b)) * 1099511628211
		}
	}
	return h
}

func post(ctx context.Context, url, token string, p lam.Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				return fmt.Errorf("POST %s: %s: %s", url, resp.Status, msg)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("POST %s: %w (last error: %v)", url, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// deducedAlarm finds the active deduced (vitrage) alarm on the instance.
func deducedAlarm(ctx context.Context, c *apiclient.Client, instance string) (string, error) {
	topo, err := c.Topology(ctx, apiclient.TopologyQuery{GraphType: "graph", Type: "nova.instance", All: true})
	if err != nil {
		return "", err
	}
	if topo.Graph == nil {
		return "", errors.New("no topology yet")
	}
	for _, n := range topo.Graph.Nodes {
		if n.ID != instance {
			continue
		}
		alarms, err := c.Alarms(ctx, apiclient.ListQuery{Resource: n.VitrageID})
		if err != nil {
			return "", err
		}
		for _, a := range alarms.Items {
			if a.Type == "vitrage" && !a.IsDeleted {
				return a.VitrageID, nil
			}
		}
		return "", fmt.Errorf("%s has no deduced alarm yet", instance)
	}
	return "", fmt.Errorf("instance %s is not in the topology yet", instance)
}
