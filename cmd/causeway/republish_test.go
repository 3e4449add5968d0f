package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/persister"
)

// `replay --republish-url` onto a second vhost, consumed by a persister of
// a second database that keeps the replayed recorded_at, gives a log whose
// graph is the one `replay --at` rebuilds from the first, byte for byte.
func TestRepublishOntoSecondVHost(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 6, Tail: 5, Start: t0}
	src := newLogRig(t, s, 3, 15)
	mid := src.moments[len(src.moments)*2/3]
	vhost := bustest.VHost(t)
	dsn2 := storetest.NewDB(t)

	// No configuration names the live bus (TestRepublishGuardNeedsTheConfig).
	out, err := runCausewayCLI(t, "replay", "--dsn", src.dsn, "--at", mid.at.Format(time.RFC3339Nano),
		"--republish-url", vhost, "--republish-batch", "7", "--progress", "never", "--republish-without-config")
	if err != nil {
		t.Fatalf("republish: %v", err)
	}
	var res republishResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Published != mid.seq || res.ToSeq != mid.seq {
		t.Fatalf("republish reported %s (%v); want %d events", out, err, mid.seq)
	}

	// A persister of the second database consumes the vhost.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db2, err := store.Open(ctx, dsn2)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	conn := bus.Conn{URL: vhost}
	pcfg := persister.Config{KeepRecordedAt: true}.WithDefaults()
	consumer, err := bus.NewConsumer(persister.ConsumerConfig(pcfg, conn), bus.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	seqr, err := bus.NewBatchPublisher(conn, bus.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	log2 := store.NewLog(db2, nil)
	p, err := persister.New(pcfg, persister.Deps{Queue: persister.NewBusQueue(consumer), Log: log2, Sequencer: seqr})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for {
		head, _, err := log2.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if head >= mid.seq {
			if head != mid.seq {
				t.Fatalf("second log has %d events, want %d", head, mid.seq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second log reached seq %d of %d in a minute", head, mid.seq)
		}
		select {
		case err := <-done:
			t.Fatalf("persister stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("persister: %v", err)
	}

	// Same events in the same order...
	for seq := int64(1); seq <= mid.seq; seq += 50 {
		a, err := src.log.ReadRange(context.Background(), seq-1, 50)
		if err != nil {
			t.Fatal(err)
		}
		b, err := log2.ReadRange(context.Background(), seq-1, 50)
		if err != nil {
			t.Fatal(err)
		}
		for i := range min(len(a), len(b)) {
			if a[i].Seq > mid.seq {
				break
			}
			if a[i].Event.EventID != b[i].Event.EventID || a[i].Seq != b[i].Seq || !a[i].RecordedAt.Equal(b[i].RecordedAt) {
				t.Fatalf("seq %d: source %s at %v, second log seq %d %s at %v", a[i].Seq, a[i].Event.EventID, a[i].RecordedAt,
					b[i].Seq, b[i].Event.EventID, b[i].RecordedAt)
			}
		}
	}
	// ... at the same times, so the same graph, byte for byte, whether the
	// second instance is asked by seq or by time.
	want, err := runCausewayCLI(t, "replay", "--dsn", src.dsn, "--at", mid.at.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range [][]string{{"--seq", strconv.FormatInt(mid.seq, 10)}, {"--at", mid.at.Format(time.RFC3339Nano)}} {
		got, err := runCausewayCLI(t, append([]string{"replay", "--dsn", dsn2}, at...)...)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			var g, w any
			_ = json.Unmarshal([]byte(got), &g)
			_ = json.Unmarshal([]byte(want), &w)
			t.Fatalf("graph of the second instance (%s) differs (-got +want):\n%s", at, cmp.Diff(g, w))
		}
	}

	// The live bus of the config file is refused, and so is a bad batch.
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	if err := os.WriteFile(cfgPath, []byte("database: {dsn: \""+src.dsn+"\"}\nbus: {url: \""+vhost+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCausewayCLI(t, "--config", cfgPath, "replay", "--seq", "3", "--republish-url", vhost+"/"); exitCode(err) != exitBadInput {
		t.Fatalf("republish onto the live bus: %v", err)
	}
	// So is the processors' own bus, when it is not bus.url.
	if err := os.WriteFile(cfgPath, []byte("database: {dsn: \""+src.dsn+"\"}\nbus: {url: \"amqp://guest:guest@127.0.0.1:5672/elsewhere\"}\nprocessor: {amqp_url: \""+vhost+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCausewayCLI(t, "--config", cfgPath, "replay", "--seq", "3", "--republish-url", vhost); exitCode(err) != exitBadInput {
		t.Fatalf("republish onto the processors' bus: %v", err)
	}
	if _, err := runCausewayCLI(t, "replay", "--dsn", src.dsn, "--seq", "3", "--republish-url", vhost, "--republish-batch", "0"); exitCode(err) != exitBadInput {
		t.Fatalf("bad batch: %v", err)
	}
}

func TestSameBroker(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"amqp://u:p@h.invalid:5672/", "amqp://h.invalid:5672", true},
		{"amqp://u:p@h.invalid:5672/%2F", "amqp://x:y@h.invalid:5672/", true},
		{"amqp://u:p@h.invalid:5672/live", "amqp://u:p@h.invalid:5672/live/", true},
		{"amqp://u:p@h.invalid:5672/live", "amqp://u:p@h.invalid:5672/replay", false},
		{"amqp://u:p@h1.invalid:5672/live", "amqp://u:p@h2.invalid:5672/live", false},
		{"", "amqp://h.invalid/", false},
		// The same broker written differently: default port, case of the
		// host, the vhost's escaping, a name and an address of one host.
		{"amqp://u:p@rabbit.invalid:5672/live", "amqp://RABBIT.invalid/live", true},
		{"amqp://h.invalid/%2f", "amqp://h.invalid:5672/", true},
		{"amqp://guest:guest@localhost:5672/", "amqp://guest:guest@127.0.0.1:5672/", true},
		{"amqp://h.invalid:5672/live", "amqp://h.invalid:5673/live", false},
		// Its TLS listener is the same broker: refused, whatever the port.
		{"amqp://h.invalid/live", "amqps://h.invalid:5671/live", true},
		{"amqp://h.invalid/live", "amqps://h.invalid:5671/replay", false},
	} {
		if got := sameBroker(c.a, c.b); got != c.same {
			t.Errorf("sameBroker(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

// `replay --republish-exchange` onto an exchange of the live broker (the
// config's own bus, which the default exchange may not be): a queue bound
// to it receives every event up to --at once, in log order. With nothing
// bound to the exchange the events are unroutable, and the command says so
// instead of waiting for ever.
func TestRepublishOntoAnotherExchange(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 4, Start: t0}
	src := newLogRig(t, s, 3, 15)
	mid := src.moments[len(src.moments)/2]
	vhost := bustest.VHost(t)
	cfgPath := filepath.Join(t.TempDir(), "causeway.yaml")
	if err := os.WriteFile(cfgPath, []byte("database: {dsn: \""+src.dsn+"\"}\nbus: {url: \""+vhost+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ch := bustest.Channel(t, vhost)
	const exchange = "replay.events"
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "#", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	out, err := runCausewayCLI(t, "--config", cfgPath, "replay", "--at", mid.at.Format(time.RFC3339Nano),
		"--republish-url", vhost, "--republish-exchange", exchange, "--progress", "never")
	if err != nil {
		t.Fatalf("republish onto %s: %v", exchange, err)
	}
	var res republishResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Published != mid.seq {
		t.Fatalf("republish reported %s (%v); want %d events", out, err, mid.seq)
	}
	recs, err := src.log.ReadRange(context.Background(), 0, int(mid.seq))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		select {
		case m := <-msgs:
			ev, err := event.Decode(m.Body)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if ev.EventID != rec.Event.EventID {
				t.Fatalf("message %d is %s; the log's seq %d is %s", i, ev.EventID, rec.Seq, rec.Event.EventID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d messages", i, len(recs))
		}
	}
	select {
	case m := <-msgs:
		t.Fatalf("a message past --at: %s", m.Body)
	case <-time.After(200 * time.Millisecond):
	}
	// The live exchange of that broker stays refused.
	if _, err := runCausewayCLI(t, "--config", cfgPath, "replay", "--seq", "3", "--republish-url", vhost); exitCode(err) != exitBadInput {
		t.Fatalf("republish onto the live exchange: %v", err)
	}

	// Nothing bound: an error, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := runCausewayCLI(t, "replay", "--dsn", src.dsn, "--seq", "3", "--republish-url", vhost, "--republish-exchange", "nowhere.events", "--progress", "never")
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "unroutable") {
			t.Fatalf("republish onto an unbound exchange: %v; want an unroutable error", err)
		}
	case <-ctx.Done():
		t.Fatal("republish onto an unbound exchange did not end")
	}
}

// gatedProxy forwards TCP connections to target once opened; before, it
// closes each connection it accepts, as a broker that is down.
type gatedProxy struct {
	ln     net.Listener
	target string
	open   atomic.Bool
}

func newGatedProxy(t *testing.T, target string) *gatedProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gatedProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.open.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

// TestRepublishLongerThanTheSpool: re-publishing more events than the
// re-publisher's spool holds, onto a broker slower than the log is read
// (here: down until the spool holds three batches), waits for the broker
// rather than failing with a full spool; each event reaches the vhost
// once.
func TestRepublishLongerThanTheSpool(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 6, Tail: 160, Start: t0}
	src := newLogRig(t, s, 20, 1000)
	head := src.moments[len(src.moments)-1].seq
	const spoolMax, batch = 50, 7
	if head < 3*spoolMax {
		t.Fatalf("scenario: %d events, want several spools' worth", head)
	}
	vhost := bustest.VHost(t)
	u, err := url.Parse(vhost)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newGatedProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	// The queue the persister would consume, declared while the broker is
	// reachable, so that what is re-published is kept for counting.
	conn := bustest.Conn(t, vhost)
	if _, err := bus.DeclareTopology(conn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := republishOptions{url: u.String(), exchange: bus.EventsExchange, batch: batch, spoolMaxEvents: spoolMax}
	progress := func(done, _ int64) {
		if done >= 3*batch {
			proxy.open.Store(true)
		}
	}
	res, err := republishRange(ctx, slog.New(slog.DiscardHandler), src.log, o, 0, head, progress)
	if err != nil {
		t.Fatalf("republish %d events through a spool of %d: %v", head, spoolMax, err)
	}
	if res.Published != head {
		t.Fatalf("published %d, want %d", res.Published, head)
	}
	seen := map[string]bool{}
	for _, m := range bustest.Take(t, vhost, bus.PersistQueue, int(head)) {
		if seen[m.MessageId] {
			t.Errorf("event %s published twice", m.MessageId)
		}
		seen[m.MessageId] = true
	}
	if q, err := bustest.Channel(t, vhost).QueueDeclarePassive(bus.PersistQueue, true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Errorf("%d messages left in %s past the %d events (%v)", q.Messages, bus.PersistQueue, head, err)
	}
}

// TestRepublishGuardNeedsTheConfig: `replay --republish-url` onto the
// live exchange refuses, as bad input naming the file and the override,
// when the configuration that tells the live buses cannot be loaded (it
// is missing, or does not decode) or names none, rather than re-publishing
// unchecked; --republish-without-config re-publishes then. It does not
// waive the check of a configuration that loads, and it is for
// --republish-url only.
func TestRepublishGuardNeedsTheConfig(t *testing.T) {
	s := historytest.Scenario{Hosts: 2, InstancesPerHost: 1, Rounds: 2, Start: t0}
	src := newLogRig(t, s, 3, 15)
	vhost := bustest.VHost(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("bus: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nobus := filepath.Join(dir, "nobus.yaml")
	if err := os.WriteFile(nobus, []byte("database: {dsn: \""+src.dsn+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.yaml")
	if err := os.WriteFile(live, []byte("database: {dsn: \""+src.dsn+"\"}\nbus: {url: \""+vhost+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The exchange is declared by the first publish onto the vhost.
	published := func() bool {
		t.Helper()
		ch := bustest.Channel(t, vhost)
		return ch.ExchangeDeclarePassive(bus.EventsExchange, amqp.ExchangeTopic, true, false, false, false, nil) == nil
	}
	republish := []string{"replay", "--dsn", src.dsn, "--seq", "3", "--republish-url", vhost, "--progress", "never"}
	for _, path := range []string{"/nonexistent/causeway.yaml", bad, nobus} {
		_, err := runCausewayCLI(t, append([]string{"--config", path}, republish...)...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--republish-without-config") {
			t.Errorf("--config %s: %v (exit %d); want bad input naming the file and --republish-without-config", path, err, exitCode(err))
		}
		if published() {
			t.Fatalf("--config %s: the events were re-published", path)
		}
	}
	_, err := runCausewayCLI(t, append([]string{"--config", live}, append(republish, "--republish-without-config")...)...)
	if exitCode(err) != exitBadInput || published() {
		t.Fatalf("the live bus with --republish-without-config: %v (exit %d); want it refused", err, exitCode(err))
	}
	_, err = runCausewayCLI(t, "replay", "--dsn", src.dsn, "--seq", "3", "--republish-without-config")
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "--republish-url") {
		t.Errorf("--republish-without-config alone: %v (exit %d); want bad input naming --republish-url", err, exitCode(err))
	}
	out, err := runCausewayCLI(t, append(republish, "--republish-without-config")...)
	var res republishResult
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Published != 3 {
		t.Fatalf("--republish-without-config: %v\n%s; want 3 events re-published", err, out)
	}
}

// TestRepublishUnreachableBroker: a --republish-url whose broker cannot be
// reached or refuses the connection (no such vhost, a wrong password, no
// broker at that port) fails at once, naming the broker without its
// password, rather than retrying until the operator gives up.
func TestRepublishUnreachableBroker(t *testing.T) {
	s := historytest.Scenario{Hosts: 2, InstancesPerHost: 1, Rounds: 2, Start: t0}
	src := newLogRig(t, s, 3, 15)
	u, err := url.Parse(bustest.VHost(t))
	if err != nil {
		t.Fatal(err)
	}
	noVHost := *u
	noVHost.Path = "/causeway-no-such-vhost"
	badPass := *u
	badPass.User = url.UserPassword(u.User.Username(), "not-the-password")
	noBroker := *u
	noBroker.Host = "127.0.0.1:1"
	for _, target := range []url.URL{noVHost, badPass, noBroker} {
		_, err := runCausewayCLI(t, "replay", "--dsn", src.dsn, "--seq", "3", "--republish-url", target.String(),
			"--republish-without-config", "--progress", "never")
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), target.Host) || strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("republish onto %s: %v; want a failure naming the broker, not its password", target.Redacted(), err)
		}
	}
}
