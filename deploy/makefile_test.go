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
