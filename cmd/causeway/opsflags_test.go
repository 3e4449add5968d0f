package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/notifier/subscription"
)

// TestOperationalBadFlagsExit2: a malformed flag value of dlq and webhooks
// is bad input (exit 2), as on every other command, not a failure (exit
// 1); none of these reaches the broker or the database.
func TestOperationalBadFlagsExit2(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	cfg := "notifier:\n  dsn: \"root@tcp(127.0.0.1:1)/none\"\n  amqp_url: \"amqp://guest:guest@127.0.0.1:1/none\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "list", "--amqp-url", "amqp://127.0.0.1:1/", "--limit", "0"}, "--limit"},
		{[]string{"dlq", "requeue", "--amqp-url", "amqp://127.0.0.1:1/", "-o", "yaml"}, "--output"},
		{[]string{"webhooks", "dead-letters", "--limit", "-1"}, "--limit"},
		{[]string{"webhooks", "add", "ops", "--url", "https://hooks.example/x", "--header", "X-Team"}, "--header"},
		{[]string{"webhooks", "add", "ops", "--url", "https://hooks.example/x", "--regex", "name"}, "--regex"},
		{[]string{"webhooks", "add", "ops", "--url", "https://hooks.example/x", "--max-age", "ten"}, "--max-age"},
		{[]string{"webhooks", "add", "ops", "--url", "gopher://x/"}, "url"},
	} {
		_, err := runWebhooksCLI(ctx, append([]string{"-c", cfgPath}, c.args...)...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v (exit %d), want exit %d naming %s", c.args, err, exitCode(err), exitBadInput, c.want)
		}
	}
	// The spec's refusal still says what it is.
	_, err := runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "add", "ops", "--url", "gopher://x/")
	if !errors.Is(err, subscription.ErrInvalid) {
		t.Errorf("add with a bad URL = %v, want ErrInvalid", err)
	}
}
