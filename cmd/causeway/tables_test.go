package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/processor/api/apitest"
)

// forged is a value from outside (an alarm's name, a dead letter's id or
// reason) that would start a row of its own in a table, and shift the
// columns of its own.
const forged = "nic\tdown\nFORGED\trow"

// checkTable fails unless out has no line the value started and shows the
// value quoted, on one line.
func checkTable(t *testing.T, what, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "FORGED") {
			t.Errorf("%s: a value started a row of the table:\n%s", what, out)
			return
		}
	}
	if !strings.Contains(out, `"nic\tdown\nFORGED\trow"`) {
		t.Errorf("%s: the value is not shown quoted:\n%s", what, out)
	}
}

// TestTablesQuoteOddValues: a value from outside with a tab or a line
// break is quoted in a table (Go syntax), as templates show quotes the
// params, so that it stays in its cell: it neither shifts the columns of
// its row nor starts a row that reads as another alarm, resource or dead
// letter.
func TestTablesQuoteOddValues(t *testing.T) {
	_, url := apiServer(t, func(b *apitest.Backend) {
		b.G.Vertices[2] = graph.Vertex{ID: 2, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: "a1", Name: forged, OperationalState: "CRITICAL"}
	})
	for _, args := range [][]string{
		{"alarms", "list"}, {"alarms", "show", "2"}, {"rca", "show", "2"}, {"topology", "show", "--category", "all"},
	} {
		out, err := runCLI(t, newRootCmd(), append(args, "--url", url, "--token", "adm")...)
		if err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
			continue
		}
		checkTable(t, strings.Join(args, " "), out)
	}
}

// TestDeadLetterTablesQuoteOddValues: so do the tables of dead letters,
// whose ids and reasons come from producers and receivers outside.
func TestDeadLetterTablesQuoteOddValues(t *testing.T) {
	amqpURL := bustest.VHost(t)
	ch := bustest.Channel(t, amqpURL)
	if err := bus.DeclareDeadLetters(ch); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", bus.DeadLetterQueue, false, false, amqp.Publishing{
		MessageId: forged, Headers: amqp.Table{bus.ReasonHeader: forged}, Body: []byte("{"),
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := runWebhooksCLI(ctx, "-c", "/nonexistent/causeway.yaml", "dlq", "list", "--amqp-url", amqpURL)
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	checkTable(t, "dlq list", out)

	dsn := storetest.NewDB(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	if _, err := db.ExecContext(ctx, `INSERT INTO notifier_dead_letters (subscription_id, seq, ord, webhook_id, recorded_at, queued_at, payload, reason, dead_at)
		VALUES (?, 1, 0, 'w1', ?, ?, '{}', ?, ?)`, forged, now, now, forged, now); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("notifier:\n  dsn: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "--log-level", "error", "webhooks", "dead-letters")
	if err != nil {
		t.Fatalf("webhooks dead-letters: %v\n%s", err, out)
	}
	checkTable(t, "webhooks dead-letters", out)
}

// TestTablesCutLongCells: a long value from outside (an alarm's name may
// be most of an event's megabyte) is cut in a column the table pads,
// rather than pad every row of the table to its width: one name of 100 KB
// among 300 alarms made `alarms list` print 30 MB. The last cell of a row,
// which is not padded, is printed whole (`alarms show`), and so is the
// JSON.
func TestTablesCutLongCells(t *testing.T) {
	long := strings.Repeat("ü", 50_000) + "END"
	_, url := apiServer(t, func(b *apitest.Backend) {
		for i := range 300 {
			id := graph.VertexID(10 + i)
			b.G.Vertices[id] = graph.Vertex{ID: id, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: fmt.Sprint("x", i), Name: "short", OperationalState: "WARNING"}
		}
		b.G.Vertices[2] = graph.Vertex{ID: 2, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: "a1", Name: long, OperationalState: "CRITICAL"}
	})
	out, err := runCLI(t, newRootCmd(), "alarms", "list", "--url", url, "--token", "adm")
	if err != nil {
		t.Fatalf("alarms list: %v", err)
	}
	if len(out) > 200_000 {
		t.Errorf("alarms list of 301 alarms, one name of %d bytes: %d bytes printed", len(long), len(out))
	}
	if strings.Count(out, "\n") < 301 || !strings.Contains(out, "short") {
		t.Errorf("alarms list lost rows:\n%.2000s", out)
	}
	out, err = runCLI(t, newRootCmd(), "alarms", "show", "2", "--url", url, "--token", "adm")
	if err != nil || !strings.Contains(out, long) {
		t.Errorf("alarms show: %v; the name is not printed whole", err)
	}
}
