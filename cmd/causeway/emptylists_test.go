package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestEmptyListsAreJSONArrays: a list command with nothing to list prints
// [] in JSON (or an empty items array), as the API does, never null, which
// a script iterating over it would trip on.
func TestEmptyListsAreJSONArrays(t *testing.T) {
	dsn := storetest.NewDB(t)
	amqpURL := bustest.VHost(t)
	if err := bus.DeclareDeadLetters(bustest.Channel(t, amqpURL)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("notifier:\n  dsn: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, args := range [][]string{
		{"webhooks", "list", "-o", "json"},
		{"webhooks", "status", "-o", "json"},
		{"webhooks", "dead-letters", "-o", "json"},
		{"dlq", "list", "--amqp-url", amqpURL, "-o", "json"},
		{"dlq", "requeue", "--amqp-url", amqpURL, "-o", "json"},
	} {
		out, err := runWebhooksCLI(ctx, append([]string{"-c", cfgPath, "--log-level", "error"}, args...)...)
		if err != nil || strings.TrimSpace(out) != "[]" {
			t.Errorf("%v: %v, printed %q; want []", args, err, out)
		}
	}
	out, err := runWebhooksCLI(ctx, "alarms", "history", "--dsn", dsn, "-o", "json")
	if err != nil || !strings.Contains(out, `"items": []`) {
		t.Errorf("alarms history of an empty history: %v, printed %s; want \"items\": []", err, out)
	}
}
