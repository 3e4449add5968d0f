package deploy

import (
	"database/sql"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/causeway/causeway/internal/freeport"
	"github.com/causeway/causeway/internal/store/storetest"
)

// servicesShims is a PATH for services.sh in which every command that
// would touch RabbitMQ, MariaDB or the machine is a shim that records its
// arguments in calls (one line a call, the command's name first) and
// fails as a service that is not running does: rabbitmqctl (ping,
// await_startup) and mariadb-admin (ping) find nothing, start-stop-daemon
// --status finds no process, apt-get fails. id -u says root. The rest of the PATH holds
// no sbin directory, so that a command without a shim is not found
// rather than run.
func servicesShims(t *testing.T) (path, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	shim := func(name, body string) {
		script := "#!/bin/sh\necho \"" + name + " $*\" >>'" + calls + "'\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shim("id", `[ "$1" = -u ] && echo 0; exit 0`)
	shim("rabbitmqctl", "exit 1")
	shim("rabbitmq-server", "exit 0")
	shim("mariadb-admin", "exit 1")
	shim("mariadb", "exit 1")
	shim("mariadb-install-db", "exit 0")
	shim("start-stop-daemon", `case " $* " in *" --status "*) exit 3 ;; esac; exit 0`)
	// apt-get is in /usr/bin: without a shim a test would install
	// packages on the machine.
	shim("apt-get", "exit 1")
	return dir + ":/usr/bin:/bin", calls
}

// runServices runs services.sh CMD with the shims and env, which points
// its MariaDB at throwaway directories; it returns the script's output
// and the shims' calls.
func runServices(t *testing.T, cmd string, env ...string) (out, calls string, err error) {
	t.Helper()
	return runServicesWith(t, nil, cmd, env...)
}

// absent, as the body of a shim, removes it: the command is not found.
const absent = "\x00absent"

// runServicesWith is runServices with some shims replaced: bodies maps a
// command's name to its shim's body (after the line recording the call),
// or to absent.
func runServicesWith(t *testing.T, bodies map[string]string, cmd string, env ...string) (out, calls string, err error) {
	t.Helper()
	path, callsFile := servicesShims(t)
	shims := strings.SplitN(path, ":", 2)[0]
	for name, body := range bodies {
		if body == absent {
			if err := os.Remove(filepath.Join(shims, name)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		script := "#!/bin/sh\necho \"" + name + " $*\" >>'" + callsFile + "'\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(shims, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	c := exec.Command("./services.sh", cmd)
	c.Env = append([]string{
		"PATH=" + path, "HOME=" + dir,
		"CAUSEWAY_SERVICES_WAIT=1",
		"CAUSEWAY_MYSQL_DATADIR=" + filepath.Join(dir, "data"),
		"CAUSEWAY_MYSQL_RUNDIR=" + filepath.Join(dir, "run"),
		"CAUSEWAY_MYSQL_OUTPUT=" + filepath.Join(dir, "mariadbd.log"),
	}, env...)
	b, err := c.CombinedOutput()
	cb, rerr := os.ReadFile(callsFile)
	if rerr != nil && !os.IsNotExist(rerr) {
		t.Fatal(rerr)
	}
	return string(b), string(cb), err
}

// taken is a port on 127.0.0.1 that something other than the service
// listens on for the rest of the test.
func taken(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// canChownToMySQL says whether services.sh can make directories the mysql
// user's, as it does before it starts MariaDB.
func canChownToMySQL() bool {
	if os.Geteuid() != 0 {
		return false
	}
	_, err := user.Lookup("mysql")
	return err == nil
}

func freePort(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(freeport.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestServicesDoNotStartOnATakenPort: when RabbitMQ or MariaDB does not
// answer but its port on 127.0.0.1 is held by something else (another
// program, a node rabbitmqctl does not reach, a server on another
// socket), services.sh says so and starts nothing, rather than starting a
// server that cannot bind its port and waiting for it to come up. On a
// free port it does start one.
func TestServicesDoNotStartOnATakenPort(t *testing.T) {
	for _, tc := range []struct {
		cmd, portVar, start string
	}{
		{"start-rabbitmq", "CAUSEWAY_AMQP_PORT", "rabbitmq-server "},
		{"start-mariadb", "CAUSEWAY_MYSQL_PORT", "start-stop-daemon --start "},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			port := taken(t)
			out, calls, err := runServices(t, tc.cmd, tc.portVar+"="+port)
			if err == nil {
				t.Fatalf("%s succeeded with 127.0.0.1:%s taken:\n%s", tc.cmd, port, out)
			}
			if strings.Contains(calls, tc.start) {
				t.Errorf("%s started a server on the taken port 127.0.0.1:%s:\n%s\ncalls:\n%s", tc.cmd, port, out, calls)
			}
			if !strings.Contains(out, "127.0.0.1:"+port+" is taken") {
				t.Errorf("%s does not say that 127.0.0.1:%s is taken:\n%s", tc.cmd, port, out)
			}

			if tc.cmd == "start-mariadb" && !canChownToMySQL() {
				t.Skip("starting MariaDB makes its directories mysql's: needs root and the mysql user")
			}
			port = freePort(t)
			out, calls, _ = runServices(t, tc.cmd, tc.portVar+"="+port)
			if !strings.Contains(calls, tc.start) {
				t.Errorf("%s did not start a server with 127.0.0.1:%s free:\n%s\ncalls:\n%s", tc.cmd, port, out, calls)
			}
		})
	}
}

// TestServicesWaitIsBoundedInSeconds: CAUSEWAY_SERVICES_WAIT (90 by
// default) bounds a wait in seconds, as the message at its end says, not
// in attempts: an attempt that takes seconds itself (rabbitmqctl
// await_startup waits up to 5 s for a node that is booting) made a wait
// of 90 attempts last up to nine minutes. With a 2 s wait and an attempt
// that takes 2 s, the deadline has passed after the first attempt.
func TestServicesWaitIsBoundedInSeconds(t *testing.T) {
	path, calls := servicesShims(t)
	dir := strings.SplitN(path, ":", 2)[0]
	slow := "#!/bin/sh\necho \"rabbitmqctl $*\" >>'" + calls + "'\n" +
		"case \" $* \" in *\" await_startup \"*) sleep 2 ;; esac\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "rabbitmqctl"), []byte(slow), 0o755); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("./services.sh", "start-rabbitmq")
	c.Env = []string{"PATH=" + path, "HOME=" + t.TempDir(), "CAUSEWAY_SERVICES_WAIT=2", "CAUSEWAY_AMQP_PORT=" + freePort(t)}
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "RabbitMQ startup did not happen within 2s") {
		t.Fatalf("start-rabbitmq with a node that never boots: %v\n%s", err, out)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "await_startup"); n != 1 {
		t.Errorf("rabbitmqctl await_startup ran %d times in a 2 s wait, each taking 2 s; want 1:\n%s", n, b)
	}
}

// TestServicesRunningMeansListening: rabbitmqctl ping answers as soon as
// the broker's Erlang node runs, whether its application is stopped
// (rabbitmqctl stop_app), still booting, or listening on another port, and
// mariadb-admin ping over the unix socket answers for a MariaDB that does
// not listen on TCP (skip-networking, another port). The test suite and
// make run connect over TCP on 127.0.0.1, so such a service is not
// "running on 127.0.0.1:PORT": start-* and up fail, saying that nothing
// accepts connections there (rather than report success, or blame root's
// password), and status does not call it running.
func TestServicesRunningMeansListening(t *testing.T) {
	for _, tc := range []struct {
		cmd, portVar, shim string
	}{
		{"start-rabbitmq", "CAUSEWAY_AMQP_PORT", "rabbitmqctl"},
		{"start-mariadb", "CAUSEWAY_MYSQL_PORT", "mariadb-admin"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			port := freePort(t)
			up := map[string]string{tc.shim: "exit 0"}
			out, calls, err := runServicesWith(t, up, tc.cmd, tc.portVar+"="+port)
			if err == nil {
				t.Errorf("%s succeeded with nothing on 127.0.0.1:%s:\n%s", tc.cmd, port, out)
			}
			if want := "does not accept connections on 127.0.0.1:" + port; !strings.Contains(out, want) {
				t.Errorf("%s does not say %q:\n%s", tc.cmd, want, out)
			}
			if strings.Contains(calls, "rabbitmq-server ") || strings.Contains(calls, "start-stop-daemon --start ") {
				t.Errorf("%s started a second server beside the one running:\n%s", tc.cmd, calls)
			}

			out, _, err = runServicesWith(t, up, "status", tc.portVar+"="+port)
			if err == nil {
				t.Errorf("status succeeded with nothing on 127.0.0.1:%s:\n%s", port, out)
			}
			if strings.Contains(out, "running") && strings.Contains(out, "127.0.0.1:"+port) {
				t.Errorf("status calls a service running on 127.0.0.1:%s, where nothing listens:\n%s", port, out)
			}

			// Listening there, it is running: nothing is started.
			port = taken(t)
			out, calls, err = runServicesWith(t, up, tc.cmd, tc.portVar+"="+port)
			if err != nil || strings.Contains(calls, "rabbitmq-server ") || strings.Contains(calls, "start-stop-daemon --start ") {
				t.Errorf("%s with the service on 127.0.0.1:%s: %v\n%s\ncalls:\n%s", tc.cmd, port, err, out, calls)
			}
		})
	}
}

// TestServicesQuotePasswordsForMariaDB: services.sh writes the password of
// $CAUSEWAY_MYSQL_PASSWORD into CREATE USER as an SQL string literal, and
// MariaDB reads a backslash there as an escape: "pa\ss" became the
// password "pass" (and one ending in a backslash a syntax error), so the
// DSN holding the password the operator chose was refused. The literal
// each CREATE USER carries must read, on a real server, as the password.
func TestServicesQuotePasswordsForMariaDB(t *testing.T) {
	dsn := storetest.ServerDSN(t)
	const password = `pa\ss'w\0"%_\`
	sqlFile := filepath.Join(t.TempDir(), "sql")
	mariadb := `for a; do last=$a; done
case $last in *"SELECT COUNT"*) echo 0 ;; esac
printf '%s\0' "$last" >>'` + sqlFile + `'
exit 0`
	out, _, err := runServicesWith(t, map[string]string{"rabbitmqctl": "exit 0", "mariadb-admin": "exit 0", "mariadb": mariadb},
		"accounts", "CAUSEWAY_MYSQL_PASSWORD="+password)
	if err != nil {
		t.Fatalf("accounts: %v\n%s", err, out)
	}
	b, err := os.ReadFile(sqlFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	created := 0
	for _, stmt := range strings.Split(string(b), "\x00") {
		_, lit, ok := strings.Cut(stmt, " IDENTIFIED BY ")
		if !ok || !strings.HasPrefix(stmt, "CREATE USER 'causeway'") {
			continue
		}
		created++
		lit = strings.TrimSuffix(strings.TrimSpace(lit), ";")
		var got string
		if err := db.QueryRow("SELECT " + lit).Scan(&got); err != nil {
			t.Errorf("the password's literal %s does not parse: %v", lit, err)
			continue
		}
		if got != password {
			t.Errorf("the literal %s reads as the password %q; want %q", lit, got, password)
		}
	}
	if created != 2 {
		t.Errorf("%d CREATE USER statements with a password; want 2 (127.0.0.1, localhost):\n%s", created, b)
	}
}

// TestServicesUpLeavesARunningDatabaseAlone: "up" installs MariaDB only
// when it is missing. It looked for the binary alone, before asking
// whether a server runs, so a database server running without
// /usr/sbin/mariadbd (MySQL, or a MariaDB before 10.5, whose server is
// mysqld) had apt install mariadb-server over it. A server that answers,
// or that holds the port, is left as it is: nothing is installed.
func TestServicesUpLeavesARunningDatabaseAlone(t *testing.T) {
	for _, tc := range []struct {
		name string
		ping string // mariadb-admin's shim
	}{
		{"answers", "exit 0"},
		{"holds the port", "exit 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := map[string]string{"rabbitmqctl": "exit 0", "mariadb-admin": tc.ping, "mariadb": "exit 0"}
			out, calls, _ := runServicesWith(t, up, "up",
				"CAUSEWAY_AMQP_PORT="+taken(t), "CAUSEWAY_MYSQL_PORT="+taken(t),
				"CAUSEWAY_MARIADBD="+filepath.Join(t.TempDir(), "mariadbd"))
			if strings.Contains(calls, "apt-get ") {
				t.Errorf("up tried to install MariaDB beside a running server:\n%s\ncalls:\n%s", out, calls)
			}
			if strings.Contains(calls, "start-stop-daemon --start ") || strings.Contains(calls, "mariadb-install-db ") {
				t.Errorf("up started or initialised a second server:\n%s", calls)
			}
		})
	}
}

// TestServicesUpLeavesARunningBrokerAlone: "up" installs RabbitMQ only
// when it is missing. It looked for rabbitmq-server alone, before asking
// whether a broker runs, so a broker that runs without it on the PATH (in
// a container, or from another install) had apt install rabbitmq-server
// beside it, whose package may start a second broker on the same port. A
// broker that answers rabbitmqctl, or that holds the port, is left as it
// is: nothing is installed.
func TestServicesUpLeavesARunningBrokerAlone(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctl  string // rabbitmqctl's shim
	}{
		{"answers", "exit 0"},
		{"holds the port", absent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := map[string]string{"rabbitmq-server": absent, "rabbitmqctl": tc.ctl, "mariadb-admin": "exit 0", "mariadb": "exit 0"}
			out, calls, _ := runServicesWith(t, up, "up", "CAUSEWAY_AMQP_PORT="+taken(t), "CAUSEWAY_MYSQL_PORT="+taken(t))
			if strings.Contains(calls, "apt-get ") {
				t.Errorf("up tried to install RabbitMQ beside a running broker:\n%s\ncalls:\n%s", out, calls)
			}
		})
	}
}
