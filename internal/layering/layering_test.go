package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/causeway/causeway"

// rules maps a package prefix to the packages that nothing under it may
// depend on, directly or transitively.
var rules = []struct {
	prefix    string
	forbidden []string
	why       string
}{
	{
		prefix: module + "/graph",
		forbidden: []string{
			"github.com/rabbitmq/amqp091-go", "github.com/go-sql-driver/mysql", "database/sql",
			"github.com/hashicorp/raft", "net/http", "net", "os/exec",
			module + "/internal/bus", module + "/internal/store", module + "/processor",
			module + "/persister", module + "/snapshot",
		},
		why: "the graph is a pure function of the log (invariant 3): no I/O",
	},
	{prefix: module + "/internal/event", forbidden: []string{"net", "database/sql", "github.com/rabbitmq/amqp091-go"}, why: "the envelope is pure"},
	{prefix: module + "/drivers", forbidden: []string{module + "/processor", module + "/persister"}, why: "producers never depend on consumers"},
	{prefix: module + "/listeners", forbidden: []string{module + "/processor", module + "/persister"}, why: "producers never depend on consumers"},
	{prefix: module + "/", forbidden: []string{module + "/cmd/"}, why: "only cmd wires components; nothing imports it"},
}

func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}{{"\t"}}{{join .Deps " "}}`, module+"/...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		pkg, deps, _ := strings.Cut(sc.Text(), "\t")
		for _, r := range rules {
			if !strings.HasPrefix(pkg, r.prefix) || strings.HasPrefix(pkg, module+"/cmd/") {
				continue
			}
			checked++
			for _, d := range strings.Fields(deps) {
				for _, f := range r.forbidden {
					if forbids(f, d) {
						t.Errorf("%s depends on %s: %s", pkg, d, r.why)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package was checked: the go list output was not understood")
	}
}

// forbids reports whether dependency d falls under rule entry f: f itself,
// its subpackages, or, when f ends in "/", anything below that path.
func forbids(f, d string) bool {
	if strings.HasSuffix(f, "/") {
		return strings.HasPrefix(d, f)
	}
	return d == f || strings.HasPrefix(d, f+"/")
}

func TestForbids(t *testing.T) {
	for _, tc := range []struct {
		f, d string
		want bool
	}{
		{"net", "net", true},
		{"net", "net/http", true},
		{"net", "netip", false},
		{module + "/cmd/", module + "/cmd/causeway", true},
		{module + "/processor", module + "/processorx", false},
		{"database/sql", "database/sql/driver", true},
	} {
		if got := forbids(tc.f, tc.d); got != tc.want {
			t.Errorf("forbids(%q, %q) = %v, want %v", tc.f, tc.d, got, tc.want)
		}
	}
}
