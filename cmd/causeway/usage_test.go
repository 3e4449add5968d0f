package main

import (
	"slices"
	"strings"
	"testing"
)

// TestUsageErrorsExit2: every usage error of the binary exits 2, not 1
// as a runtime failure does (nor 0 with the help text, for an unknown
// subcommand of a command that only groups others), so that a script or
// a unit can tell a wrong command line from a component that failed.
// --log-level and --log-format values the logger does not know are usage
// errors too, refused before anything starts: a daemon started with
// --log-level=warning must not log at info, nor --log-format=JSON in
// text, without a word.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "causeway"`},
		{[]string{"persiter"}, "persister"}, // the suggestion
		{[]string{"persister", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"persister", "extra"}, `unknown command "extra" for "causeway persister"`},
		{[]string{"status", "extra"}, `unknown command "extra" for "causeway status"`},
		{[]string{"templates", "bogus"}, `unknown command "bogus" for "causeway templates"`},
		{[]string{"webhooks", "dead-letters", "purge", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"rca", "show"}, "accepts 1 arg(s), received 0"},
		{[]string{"persister", "--log-level", "warning"}, `--log-level: "warning" is not`},
		{[]string{"listener", "--log-format", "JSON"}, `--log-format: "JSON" is not text or json`},
	} {
		_, err := runCLI(t, newRootCmd(), append(tc.args, "--config", "/nonexistent/causeway.yaml")...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v (exit %d), want exit %d saying %s", tc.args, err, exitCode(err), exitBadInput, tc.want)
		}
	}
	for _, args := range [][]string{{}, {"templates"}, {"--log-level", "DEBUG", "--log-format", "json", "version"}} {
		if _, err := runCLI(t, newRootCmd(), args...); err != nil {
			t.Errorf("%q: %v, want the help or the command's output and exit 0", args, err)
		}
	}
}

// TestAPIBadFlagsExit2: a malformed value of the API flags (-o, --url,
// --timeout) of every command that asks a processor is bad input (exit
// 2) naming the flag, as on the other commands, not a failure (exit 1);
// none reaches a processor. A --timeout of zero or less would otherwise
// be taken for the default without a word.
func TestAPIBadFlagsExit2(t *testing.T) {
	cmds := [][]string{
		{"status"}, {"cluster", "status"}, {"cluster", "join", "p2", "x:1"}, {"cluster", "remove", "p2"},
		{"topology", "show"}, {"alarms", "list"}, {"alarms", "show", "1"}, {"alarms", "count"},
		{"resources", "list"}, {"resources", "show", "1"}, {"resources", "count"}, {"rca", "show", "1"},
		{"templates", "list"}, {"templates", "show", "t1"}, {"templates", "delete", "t1"},
	}
	for _, bad := range []struct {
		flags []string
		want  string
	}{
		{[]string{"-o", "yaml"}, "--output"},
		{[]string{"--url", "127.0.0.1:8081"}, "--url"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--timeout", "-1s"}, "--timeout"},
	} {
		for _, c := range cmds {
			args := append(append([]string{"--config", "/nonexistent/causeway.yaml"}, c...), bad.flags...)
			if !slices.Contains(bad.flags, "--url") {
				args = append(args, "--url", "http://127.0.0.1:1") // nothing listens there
			}
			_, err := runCLI(t, newRootCmd(), args...)
			if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("%q: %v (exit %d), want exit %d naming %s", args, err, exitCode(err), exitBadInput, bad.want)
			}
		}
	}
}
