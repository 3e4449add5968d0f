package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
	"github.com/spf13/cobra"
)

// apiServer serves the processor API over a fake backend; each of with
// changes the backend before the server starts.
func apiServer(t *testing.T, with ...func(*apitest.Backend)) (*apitest.Backend, string) {
	t.Helper()
	b := &apitest.Backend{
		Seq: 3, Leader: "p1",
		G: &apitest.Graph{
			Vertices: map[graph.VertexID]graph.Vertex{
				0: {ID: 0, Category: graph.CategoryResource, Type: "openstack.cluster", ExternalID: "c"},
				1: {ID: 1, Category: graph.CategoryResource, Type: "nova.host", ExternalID: "h1"},
				2: {ID: 2, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: "a1", Name: "nic down", OperationalState: "CRITICAL"},
			},
			Edges: []graph.Edge{{From: 0, To: 1, Relationship: "contains"}, {From: 2, To: 1, Relationship: "on"}},
			Tmpls: []api.Template{{Name: "t1", Body: "metadata:\n  name: t1\n"}},
		},
		Members: []api.Member{{ID: "p1", Address: "127.0.0.1:7001", Suffrage: "Voter", Leader: true}},
	}
	for _, f := range with {
		f(b)
	}
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "adm", Role: api.RoleAdmin}}}, b, api.Deps{NodeID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return b, ts.URL
}

func runCLI(t *testing.T, root *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestAPICommands(t *testing.T) {
	b, url := apiServer(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"applied_seq", "3", "leader", "p1", "unrecoverable_gaps", "apply_errors", "pending_outbox_rows"}},
		{[]string{"alarms", "list"}, []string{"nic down", "CRITICAL", "(seq 3 on node p1; leader p1)"}},
		{[]string{"alarms", "show", "2"}, []string{"nic down", "prometheus"}},
		{[]string{"alarms", "count"}, []string{"CRITICAL  1", "total     1", "(seq 3 on node p1; leader p1)"}},
		{[]string{"alarms", "count", "--resource", "0"}, []string{"total  0"}},
		{[]string{"resources", "list"}, []string{"openstack.cluster  c   -     -      -        false", "nova.host          h1  -", "(seq 3 on node p1; leader p1)"}},
		{[]string{"resources", "list", "--type", "nova.host"}, []string{"nova.host"}},
		{[]string{"resources", "show", "1"}, []string{"type               nova.host", "id                 h1", "project_id         -"}},
		{[]string{"resources", "count"}, []string{"nova.host          1", "openstack.cluster  1", "total              2"}},
		{[]string{"topology", "show"}, []string{"nova.host", "contains"}},
		{[]string{"topology", "show", "--graph-type", "tree"}, []string{"openstack.cluster c", "  nova.host h1"}},
		{[]string{"rca", "show", "2"}, []string{"root causes", "2", "(seq 3 on node p1; leader p1)"}},
		{[]string{"cluster", "status"}, []string{"127.0.0.1:7001", "Voter"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			out, err := runCLI(t, newRootCmd(), append(tt.args, "--url", url, "--token", "adm")...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", tt.args, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
				}
			}
		})
	}
	// The filters reach the API: a type leaves the others out.
	if out, err := runCLI(t, newRootCmd(), "resources", "list", "--type", "nova.host", "--url", url, "--token", "adm"); err != nil || strings.Contains(out, "openstack.cluster") {
		t.Errorf("resources list --type nova.host: %v\n%s", err, out)
	}
	if out, err := runCLI(t, newRootCmd(), "resources", "count", "--group-by", "severity", "--url", url, "--token", "adm"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("resources count --group-by severity: %v; want the API's 400\n%s", err, out)
	}
	// The status table says the seq and leader in its rows; no footer.
	if out, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "adm"); err != nil || strings.Contains(out, "(seq ") {
		t.Errorf("status: %v; a footer repeats the rows:\n%s", err, out)
	}
	out, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "adm", "-o", "json")
	var st api.StatusResponse
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Status.AppliedSeq != 3 {
		t.Errorf("status -o json: %v\n%s", err, out)
	}
	if _, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v", err)
	}
	if _, err := runCLI(t, newRootCmd(), "cluster", "join", "p2", "x:1", "--url", url, "--token", "adm"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("join on a follower: %v", err)
	}

	// The templates API subcommands, under a parent as the templates
	// command will hold them.
	parent := &cobra.Command{Use: "templates"}
	parent.AddCommand(templatesAPICmds(addAPIFlags(parent))...)
	out, err = runCLI(t, parent, "list", "--url", url, "--token", "adm")
	if err != nil || !strings.Contains(out, "t1") {
		t.Errorf("templates list: %v\n%s", err, out)
	}
	parent = &cobra.Command{Use: "templates"}
	parent.AddCommand(templatesAPICmds(addAPIFlags(parent))...)
	if _, err = runCLI(t, parent, "delete", "t1", "--url", url, "--token", "adm"); err != nil || len(b.Published()) != 1 {
		t.Errorf("templates delete: %v, published %d", err, len(b.Published()))
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("metadata: {version: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parent = &cobra.Command{Use: "templates"}
	parent.AddCommand(templatesAPICmds(addAPIFlags(parent))...)
	_, err = runCLI(t, parent, "add", bad, "--url", url, "--token", "adm")
	// The problems are listed one a line, as templates validate lists
	// them, not as the API's JSON document.
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || strings.Contains(ee.msg, `"seq"`) ||
		!strings.Contains(ee.msg, bad+": 4 problem(s)\n  metadata.name: metadata section must contain id field. (code 60)\n") {
		t.Errorf("templates add of an invalid template: %v", err)
	}

	// A template including a definition the node has not loaded is asked
	// again for --wait (the API answers 409), then refused; once the
	// definition is loaded, it goes through.
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "graph", "template", "testdata", "valid", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	uses := filepath.Join(t.TempDir(), "uses.yaml")
	if err := os.WriteFile(uses, []byte(read("v2_uses_definition.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	published := len(b.Published())
	parent = &cobra.Command{Use: "templates"}
	parent.AddCommand(templatesAPICmds(addAPIFlags(parent))...)
	start := time.Now()
	_, err = runCLI(t, parent, "add", uses, "--wait", "1200ms", "--url", url, "--token", "adm")
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, "basic_definitions") || time.Since(start) < time.Second {
		t.Errorf("templates add with its definition not loaded: %v after %s; want exit 2 naming it, after --wait", err, time.Since(start))
	}
	b.G.Tmpls = append(b.G.Tmpls, api.Template{Name: "defs.yaml", Body: read("v2_definition.yaml")})
	parent = &cobra.Command{Use: "templates"}
	parent.AddCommand(templatesAPICmds(addAPIFlags(parent))...)
	if _, err = runCLI(t, parent, "add", uses, "--url", url, "--token", "adm"); err != nil || len(b.Published()) != published+1 {
		t.Errorf("templates add with its definition loaded: %v, published %d", err, len(b.Published())-published)
	}
}

const sampleProcessorConfig = `
database: {dsn: "root@tcp(127.0.0.1:3306)/causeway"}
bus: {url: "amqp://guest:guest@127.0.0.1:5672/"}
processor:
  node_id: p1
  data_dir: /var/lib/causeway/p1
  raft:
    bind_addr: 127.0.0.1:7001
    heartbeat_timeout: 500ms
    peers:
      - {id: p1, address: "127.0.0.1:7001"}
      - {id: p2, address: "127.0.0.1:7002"}
  api:
    listen: 127.0.0.1:8999
    tokens: [{name: ops, token: s3cret, role: admin}]
  snapshot:
    policy: {every_events: 10000, every_interval: 5m}
`

func TestProcessorSection(t *testing.T) {
	cfg, err := parseConfig([]byte(sampleProcessorConfig), needBoth)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	pc := cfg.Processor
	if err := pc.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	pc.SetDefaults()
	if pc.Raft.NodeID != "p1" || pc.Raft.HeartbeatTimeout.Milliseconds() != 500 || len(pc.Raft.Peers) != 2 ||
		pc.Snapshot.Policy.EveryEvents != 10000 || pc.DatabaseDSN == "" || pc.AMQPURL == "" {
		t.Errorf("processor section = %+v", pc)
	}
	if strings.Contains(pc.String(), "root@tcp") {
		t.Errorf("String leaks the DSN: %s", pc)
	}
	bad := strings.Replace(sampleProcessorConfig, "role: admin", "role: root", 1)
	cfg, err = parseConfig([]byte(bad), needBoth)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Processor.Validate(); err == nil || !strings.Contains(err.Error(), "api: tokens[0].role") {
		t.Errorf("validate a bad role: %v", err)
	}
	if _, err := parseConfig([]byte(strings.Replace(sampleProcessorConfig, "node_id: p1", "node_id: p1\n  bogus: 1", 1)), needBoth); err == nil {
		t.Errorf("unknown key accepted")
	}
}

// TestTokenFromEnvNotInHelp: the token of CAUSEWAY_TOKEN authenticates
// the API commands but is no flag default, which --help would print.
func TestTokenFromEnvNotInHelp(t *testing.T) {
	_, url := apiServer(t)
	t.Setenv("CAUSEWAY_TOKEN", "adm")
	for _, args := range [][]string{{"status", "--help"}, {"topology", "show", "--help"}, {"rca", "--help"}} {
		out, err := runCLI(t, newRootCmd(), args...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, `"adm"`) || !strings.Contains(out, "CAUSEWAY_TOKEN") {
			t.Errorf("%v shows the token of CAUSEWAY_TOKEN, or does not name the variable:\n%s", args, out)
		}
	}
	if out, err := runCLI(t, newRootCmd(), "status", "--url", url); err != nil || !strings.Contains(out, "applied_seq") {
		t.Errorf("status with the token of CAUSEWAY_TOKEN: %v\n%s", err, out)
	}
	// --token still wins.
	if _, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("status --token wrong: %v, want a 401", err)
	}
}

// TestTopologyDepthRefused: --depth below 0 was dropped by the client (the
// whole graph came back), and a graph's depth without --root was ignored
// by the server. Both are refused before anything is asked.
func TestTopologyDepthRefused(t *testing.T) {
	for _, args := range [][]string{
		{"topology", "show", "--depth", "-1", "--root", "1"},
		{"topology", "show", "--depth", "2"},
		{"topology", "show", "--depth", "-1", "--graph-type", "tree", "--at", "-1h", "--dsn", "nowhere"},
	} {
		// No server at this URL: a refusal before any request says so.
		_, err := runCLI(t, newRootCmd(), append(args, "--url", "http://127.0.0.1:1")...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "depth: ") {
			t.Errorf("%v: %v (exit %d), want exit %d naming depth", args, err, exitCode(err), exitBadInput)
		}
	}
}

// TestEmptyPointRefused: --at given empty (a script's unset variable)
// asks about the past all the same, as --seq 0 does: refused before any
// request, not answered live.
func TestEmptyPointRefused(t *testing.T) {
	for _, args := range [][]string{
		{"rca", "show", "2", "--at", ""},
		{"rca", "show", "2", "--at", " "},
		{"topology", "show", "--at", ""},
		{"replay", "--at", ""},
	} {
		_, err := runCLI(t, newRootCmd(), args...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "--at: empty time") {
			t.Errorf("%q: %v (exit %d), want exit %d: --at: empty time", args, err, exitCode(err), exitBadInput)
		}
	}
}

// TestFlagsOnlyWhereUsed: flags that a command accepted and ignored are
// refused: the API's on commands that read files or the database, -o where
// there is no document to format, --dsn on a live query.
func TestFlagsOnlyWhereUsed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"alarms", "history", "--url", "http://x:1"}, "unknown flag: --url"},
		{[]string{"alarms", "stats", "--token", "t"}, "unknown flag: --token"},
		{[]string{"alarms", "history", "--timeout", "1s"}, "unknown flag: --timeout"},
		{[]string{"templates", "validate", "x.yaml", "-o", "json"}, "unknown shorthand flag: 'o'"},
		{[]string{"templates", "test", "x.yaml", "--url", "http://x:1"}, "unknown flag: --url"},
		{[]string{"webhooks", "add", "w1", "-o", "json"}, "unknown shorthand flag: 'o'"},
		{[]string{"webhooks", "delete", "w1", "-o", "json"}, "unknown shorthand flag: 'o'"},
		{[]string{"webhooks", "list", "-o", "yaml"}, `--output: "yaml" is not table or json`},
		{[]string{"webhooks", "dead-letters", "-o", "yaml"}, `--output: "yaml" is not table or json`},
		{[]string{"topology", "show", "--dsn", "root@tcp(x)/db", "--url", "http://127.0.0.1:1"}, "--dsn reads the past"},
		{[]string{"rca", "show", "3", "--dsn", "root@tcp(x)/db", "--url", "http://127.0.0.1:1"}, "--dsn reads the past"},
		{[]string{"topology", "show", "--seq", "3", "--url", "http://127.0.0.1:1"}, "--url is for the live API"},
		{[]string{"rca", "show", "3", "--at", "-1h", "--token", "t"}, "--token is for the live API"},
	} {
		_, err := runCLI(t, newRootCmd(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// Where they are used, they still are.
	_, url := apiServer(t)
	for _, args := range [][]string{{"alarms", "list"}, {"templates", "list"}, {"topology", "show"}} {
		if _, err := runCLI(t, newRootCmd(), append(args, "--url", url, "--token", "adm", "-o", "json")...); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestAlarmTimesInTables: alarms list and show print an alarm's update
// time alike, in RFC 3339, and one the alarm has not (which the JSON
// leaves out) as "-", not as year 1.
func TestAlarmTimesInTables(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	url := serveLive(t, &apitest.Graph{Vertices: map[graph.VertexID]graph.Vertex{
		1: {ID: 1, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: "a1", Name: "nic down", OperationalState: "CRITICAL", UpdateTimestamp: at},
		2: {ID: 2, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: "a2", Name: "disk full", OperationalState: "WARNING"},
	}}, 5)
	list, err := runCLI(t, newRootCmd(), "alarms", "list", "--url", url, "--token", "rd")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"show", "1"}, {"show", "2"}} {
		out, err := runCLI(t, newRootCmd(), append([]string{"alarms"}, append(args, "--url", url, "--token", "rd")...)...)
		if err != nil {
			t.Fatal(err)
		}
		list += out
	}
	if strings.Contains(list, "0001-01-01") || strings.Count(list, "2026-03-04T05:06:07Z") != 2 || !regexp.MustCompile(`update_timestamp +-\n`).MatchString(list) {
		t.Errorf("alarm times: want 2026-03-04T05:06:07Z in list and show, \"-\" for none, in\n%s", list)
	}
}

// TestClusterChangeOnAFollower: join and remove sent to a follower fail
// naming the leader the node knows, which the operator is to send them
// to (or saying that none is known), not with the bare 409.
func TestClusterChangeOnAFollower(t *testing.T) {
	for _, leader := range []string{"p9", ""} {
		_, url := apiServer(t, func(b *apitest.Backend) { b.Leader = leader })
		want := "the leader is p9"
		if leader == "" {
			want = "no leader is known"
		}
		for _, args := range [][]string{{"cluster", "join", "p2", "x:1"}, {"cluster", "remove", "p2"}} {
			_, err := runCLI(t, newRootCmd(), append(args, "--url", url, "--token", "adm")...)
			if err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), want) {
				t.Errorf("%v with leader %q: %v; want the 409 saying %q", args, leader, err, want)
			}
		}
	}
}

// TestAPIRefusalsExit2: what a processor refuses as the request's own
// fault (400: a malformed id or flag value the API checks, such as
// --group-by; 404: no such alarm, resource or template) is bad input,
// exit 2, as the same refusals of the historical commands and the
// malformed flags the CLI checks itself; the API's message is kept. A
// bad token (401) stays a failure, exit 1.
func TestAPIRefusalsExit2(t *testing.T) {
	_, url := apiServer(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"resources", "count", "--group-by", "bogus"}, "400"},
		{[]string{"alarms", "count", "--group-by", "bogus"}, "400"},
		{[]string{"alarms", "show", "a/b"}, "400"},
		{[]string{"alarms", "show", "999"}, "404"},
		{[]string{"resources", "show", "999"}, "404"},
		{[]string{"rca", "show", "999"}, "404"},
		{[]string{"templates", "show", "nosuch"}, "404"},
		{[]string{"templates", "delete", "nosuch"}, "404"},
	} {
		_, err := runCLI(t, newRootCmd(), append(c.args, "--url", url, "--token", "adm")...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (exit %d); want exit %d with the API's %s", c.args, err, exitCode(err), exitBadInput, c.want)
		}
	}
	if _, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "wrong"); exitCode(err) != 1 || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v (exit %d); want exit 1 with the 401", err, exitCode(err))
	}
}

// TestClusterJoinBadAddress: cluster join with an address that is not the
// raft host:port (the API's URL, a missing port) is refused as bad input,
// exit 2, and adds no voter.
func TestClusterJoinBadAddress(t *testing.T) {
	b, url := apiServer(t, func(b *apitest.Backend) { b.IsLeader = true })
	for _, addr := range []string{"10.0.0.2", "http://10.0.0.2:8081"} {
		_, err := runCLI(t, newRootCmd(), "cluster", "join", "p2", addr, "--url", url, "--token", "adm")
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "address") {
			t.Errorf("cluster join p2 %s: %v (exit %d); want exit %d naming the address", addr, err, exitCode(err), exitBadInput)
		}
	}
	if len(b.Members) != 1 {
		t.Errorf("members %v; want p1 alone", b.Members)
	}
}

// TestClusterRefusalsExit2: a membership change the leader refuses for
// what it asks (a voter that would leave no quorum answering: 422; the
// removal of no member: 404) is bad input, exit 2, with the reason.
func TestClusterRefusalsExit2(t *testing.T) {
	_, url := apiServer(t, func(b *apitest.Backend) {
		b.IsLeader = true
		b.JoinRefused = fmt.Errorf("join p2 at x:1: %w: the change would leave no quorum of voters that answer", api.ErrRefused)
	})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "join", "p2", "x:1"}, "422"},
		{[]string{"cluster", "remove", "nosuch"}, "404"},
	} {
		_, err := runCLI(t, newRootCmd(), append(c.args, "--url", url, "--token", "adm")...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (exit %d); want exit %d with the API's %s", c.args, err, exitCode(err), exitBadInput, c.want)
		}
	}
}
