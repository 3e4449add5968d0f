package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
)

func runWebhooksCLI(ctx context.Context, args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

type hookReceiver struct {
	mu   sync.Mutex
	up   bool
	seen []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	h.seen = append(h.seen, r.Header.Get("webhook-id"))
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// The notifier and webhooks commands against a real database and a real
// receiver: status is loud (exit 2) over the backlog limit, rows that
// expire become dead letters, and redrive sends them.
func TestNotifierAndWebhooksCommands(t *testing.T) {
	dsn := storetest.NewDB(t)
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rcv := &hookReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	spec := fmt.Sprintf(`{"url":%q,"secret_ref":"main","delivery":{"max_age":"1s","max_backlog":3}}`, srv.URL)
	b := outbox.Batch{Seq: 11, Subscriptions: []subscription.Update{{ID: "ops", Seq: 1, Spec: json.RawMessage(spec)}}}
	for i := range 10 {
		seq := int64(2 + i)
		b.Rows = append(b.Rows, outbox.Row{SubscriptionID: "ops", Seq: seq, WebhookID: outbox.WebhookID("ops", seq, "a", "raised"),
			RecordedAt: time.Now(), Payload: []byte(`{"n":1}`)})
	}
	if _, err := outbox.Write(ctx, db, 1, b); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	cfg := fmt.Sprintf(`notifier:
  dsn: %q
  instance_id: cli-test
  poll_interval: 20ms
  scan_interval: 100ms
  lease_ttl: 2s
  status_interval: 100ms
  delivery: {timeout: 500ms, backoff_initial: 10ms, backoff_max: 50ms}
  secrets:
    main: {value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`, dsn)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "list")
	if err != nil || !strings.Contains(out, "ops") || !strings.Contains(out, srv.URL) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "status")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(out, "OVER") {
		t.Fatalf("status over the limit: err %v, want exit 2\n%s", err, out)
	}
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "show", "ops")
	var st notifier.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Pending != 10 || !st.BacklogOverLimit {
		t.Fatalf("show: %v\n%s", err, out)
	}

	// Run the notifier: the receiver is down, so the rows expire.
	nctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := runWebhooksCLI(nctx, "-c", cfgPath, "notifier")
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		dls, err := notifier.DeadLetters(ctx, db, "ops", 100)
		if err == nil && len(dls) == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 10 dead letters after 30s (have %d, err %v)", len(dls), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("notifier command: %v", err)
	}
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "dead-letters")
	if err != nil || strings.Count(out, "max_age") != 10 {
		t.Fatalf("dead-letters: %v\n%s", err, out)
	}
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "status")
	if err != nil {
		t.Fatalf("status after expiry: %v\n%s", err, out)
	}
	// A redrive while the receiver still fails says why, per subscription,
	// rather than only how many letters stay.
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "redrive")
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "ops: HTTP 502") {
		t.Fatalf("redrive to a failing receiver: err %v, want exit 1 and the answer per subscription\n%s", err, out)
	}
	rcv.mu.Lock()
	rcv.up = true
	rcv.mu.Unlock()
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "redrive")
	if err != nil || !strings.Contains(out, "sent 10, failed 0") || rcv.count() != 10 {
		t.Fatalf("redrive: %v (received %d)\n%s", err, rcv.count(), out)
	}
	// purge names what it deletes; the subscription's letters are gone
	// after the redrive, so there is nothing left to delete.
	if _, err := runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "dead-letters", "purge"); err == nil {
		t.Fatal("purge without --subscription or --orphaned accepted")
	}
	out, err = runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "dead-letters", "purge", "--subscription", "ops")
	if err != nil || !strings.Contains(out, "deleted 0 dead letters") {
		t.Fatalf("purge: %v\n%s", err, out)
	}
}

// webhooks add validates the spec and publishes a subscription.put event
// that reaches the persister's queue; delete publishes subscription.delete.
func TestWebhooksAddDelete(t *testing.T) {
	amqpURL := bustest.VHost(t)
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("notifier:\n  dsn: x\n  amqp_url: %q\n", amqpURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "add", "ops", "--url", "gopher://x/"); !errors.Is(err, subscription.ErrInvalid) {
		t.Fatalf("add with a bad URL = %v, want ErrInvalid", err)
	}
	out, err := runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "add", "ops", "--url", "https://hooks.example/x",
		"--severity", "critical", "--regex", "name=nic", "--header", "X-Team=ops", "--secret-ref", "main", "--format", "alertmanager")
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if out, err := runWebhooksCLI(ctx, "-c", cfgPath, "webhooks", "delete", "ops"); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	var got []event.Event
	for _, m := range bustest.Take(t, amqpURL, bus.PersistQueue, 2) {
		ev, err := event.Decode(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if got[0].Kind != event.KindSubscriptionPut || got[0].Subscription.ID != "ops" || got[1].Kind != event.KindSubscriptionDelete {
		t.Fatalf("events %+v", got)
	}
	s, err := subscription.Decode(got[0].Subscription.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "https://hooks.example/x" || s.Filter.Severities[0] != "critical" || s.Filter.Regex["name"] != "nic" ||
		s.Headers["X-Team"] != "ops" || s.SecretRef != "main" || s.Format != subscription.FormatAlertmanager {
		t.Fatalf("spec %+v", s)
	}
}

// TestWebhooksShowUnknownExit2: webhooks show of an id no subscription has
// is bad input (exit 2), as alarms, resources and templates show of what
// a processor does not have, not a failure (exit 1).
func TestWebhooksShowUnknownExit2(t *testing.T) {
	dsn := storetest.NewDB(t)
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("notifier:\n  dsn: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runWebhooksCLI(context.Background(), "-c", cfgPath, "--log-level", "error", "webhooks", "show", "nosuch")
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("webhooks show nosuch: %v (exit %d); want exit %d naming it", err, exitCode(err), exitBadInput)
	}
}

// TestWebhooksFollowing: `webhooks following ID` shows the open alarms a
// subscription follows, from a processor's state, a page at a time.
func TestWebhooksFollowing(t *testing.T) {
	_, url := apiServer(t, func(b *apitest.Backend) {
		b.G.Subs = []api.Subscription{{ID: "pager", Seq: 2, Spec: json.RawMessage(`{"url":"http://p.example/"}`), Following: 3}}
		b.G.Followed = map[string][]string{"pager": {"ALARM/prometheus/a1", "ALARM/prometheus/a2", "ALARM/prometheus/a3"}}
	})
	out, err := runCLI(t, newRootCmd(), "webhooks", "following", "pager", "--limit", "2", "--url", url, "--token", "adm")
	for _, w := range []string{"following     3", "ALARM/prometheus/a1", "ALARM/prometheus/a2", "next page     --after ALARM/prometheus/a2", "(seq 3 on node p1; leader p1)"} {
		if err != nil || !strings.Contains(out, w) {
			t.Errorf("following --limit 2: %v; output lacks %q:\n%s", err, w, out)
		}
	}
	if strings.Contains(out, "a3") {
		t.Errorf("following --limit 2 lists a third alarm:\n%s", out)
	}
	out, err = runCLI(t, newRootCmd(), "webhooks", "following", "pager", "--after", "ALARM/prometheus/a2", "-o", "json", "--url", url, "--token", "adm")
	var r api.SubscriptionResponse
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.Item.Following != 3 || len(r.Following.Alarms) != 1 || r.Following.Alarms[0] != "ALARM/prometheus/a3" || r.Following.Next != "" {
		t.Errorf("following --after a2 -o json: %v\n%s", err, out)
	}
	if _, err := runCLI(t, newRootCmd(), "webhooks", "following", "nope", "--url", url, "--token", "adm"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("following of an unknown subscription: %v; want the API's 404", err)
	}
	if _, err := runCLI(t, newRootCmd(), "webhooks", "following", "pager", "--limit", "0", "--url", url, "--token", "adm"); err == nil {
		t.Errorf("following --limit 0: no error")
	}
}
