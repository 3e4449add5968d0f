package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeFuzzFailsOnAPackageThatDoesNotBuild: make fuzz lists each
// package's fuzz targets with go test -list; a package whose tests do not
// compile lists none, and make fuzz went on and passed, having fuzzed
// nothing there. It must fail, naming the package. GO is a shim that
// plays go for two packages (the second one's tests do not compile) and
// records the fuzz runs.
func TestMakeFuzzFailsOnAPackageThatDoesNotBuild(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	shim := `#!/bin/sh
case "$1" in
env) echo ` + dir + ` ;;
list) echo example.com/good; echo example.com/broken ;;
test)
	case " $* " in
	*" -list "*)
		for a; do pkg=$a; done
		if [ "$pkg" = example.com/broken ]; then
			echo "# example.com/broken" >&2
			echo "broken_test.go:3:1: syntax error" >&2
			echo "FAIL	example.com/broken [setup failed]"
			exit 1
		fi
		echo FuzzGood
		echo "ok  	$pkg	0.01s" ;;
	*" -fuzz "*) echo "go $*" >>'` + calls + `' ;;
	esac ;;
esac
exit 0
`
	gobin := filepath.Join(dir, "go")
	if err := os.WriteFile(gobin, []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("make", "-s", "-C", "..", "fuzz", "GO="+gobin).CombinedOutput()
	if err == nil {
		t.Errorf("make fuzz passed though example.com/broken's tests do not compile:\n%s", out)
	}
	if !strings.Contains(string(out), "example.com/broken") {
		t.Errorf("make fuzz does not name the package that does not build:\n%s", out)
	}
	if b, _ := os.ReadFile(calls); !strings.Contains(string(b), "-fuzz ^FuzzGood$") {
		t.Errorf("make fuzz did not fuzz FuzzGood of the package that builds; calls:\n%s", b)
	}
}

// TestCIRunFindsGo: .ci/run adds /usr/local/go/bin and the Go tools'
// directory to PATH for a CI machine whose PATH lacks Go; it asked go for
// that directory before go was on PATH, so there it printed "go: command
// not found" and added /bin instead of $GOPATH/bin. make is a shim that
// prints the PATH it is given.
func TestCIRunFindsGo(t *testing.T) {
	if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
		t.Skip("Go is not installed in /usr/local/go")
	}
	gopath, err := exec.Command("/usr/local/go/bin/go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "make"), []byte("#!/bin/sh\necho \"PATH=$PATH\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("../.ci/run")
	cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "HOME=" + os.Getenv("HOME")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Errorf(".ci/run: %v\nstderr: %s", err, stderr.String())
	}
	want := ":" + strings.TrimSpace(string(gopath)) + "/bin"
	if !strings.Contains(string(out), want) {
		t.Errorf(".ci/run gave make %s; want it to hold %s", strings.TrimSpace(string(out)), want)
	}
}

// TestMakeRunsOneRecipeAtATime: make test's prerequisites must run one
// after the other (services before the tests that use them, the chaos
// tests, which stop and start RabbitMQ and MariaDB, apart from the unit
// and integration tests that need them up), and so must make run's and
// make bench's. A MAKEFLAGS=-j from a developer's environment ran them all
// at once. GO is a shim whose commands each take a moment and note when
// another one runs meanwhile; two goals that only run $(GO) stand for
// those prerequisites, which this test cannot run.
func TestMakeRunsOneRecipeAtATime(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dir := t.TempDir()
	lock, overlaps := filepath.Join(dir, "running"), filepath.Join(dir, "overlaps")
	shim := `#!/bin/sh
[ "$1" = env ] && { echo ` + dir + `; exit 0; }
mkdir '` + lock + `' 2>/dev/null || { echo "go $*" >>'` + overlaps + `'; exit 0; }
sleep 1
rmdir '` + lock + `'
`
	gobin := filepath.Join(dir, "go")
	if err := os.WriteFile(gobin, []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-s", "-C", "..", "test-unit", "tidy-check", "GO="+gobin)
	cmd.Env = append(os.Environ(), "MAKEFLAGS=-j4")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(overlaps); err == nil {
		t.Errorf("with MAKEFLAGS=-j4, make ran recipes at once:\n%s", b)
	}
}
