package bus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

// fakeDLQ is a dead-letter queue of valid events behind a confirm-mode
// channel whose confirms never come (as on a connection the broker
// blocked); it records what requeue does with the messages.
type fakeDLQ struct {
	t       *testing.T
	mu      sync.Mutex
	queue   []amqp.Delivery
	gets    int
	acked   []uint64
	nacked  []uint64
	publish func() // run inside each publish, before it returns
}

func newFakeDLQ(t *testing.T, n int) *fakeDLQ {
	f := &fakeDLQ{t: t}
	for i := range n {
		body, err := event.Encode(testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		f.queue = append(f.queue, amqp.Delivery{Acknowledger: f, DeliveryTag: uint64(i + 1), MessageId: testEvent(i).EventID, RoutingKey: "api.entity.upsert", Body: body})
	}
	return f
}

func (f *fakeDLQ) Get(string, bool) (amqp.Delivery, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if len(f.queue) == 0 {
		return amqp.Delivery{}, false, nil
	}
	m := f.queue[0]
	f.queue = f.queue[1:]
	return m, true, nil
}

func (f *fakeDLQ) PublishWithDeferredConfirmWithContext(context.Context, string, string, bool, bool, amqp.Publishing) (*amqp.DeferredConfirmation, error) {
	if f.publish != nil {
		f.publish()
	}
	return &amqp.DeferredConfirmation{}, nil // never done
}

func (f *fakeDLQ) Ack(tag uint64, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = append(f.acked, tag)
	return nil
}

func (f *fakeDLQ) Nack(tag uint64, _, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nacked = append(f.nacked, tag)
	return nil
}

func (f *fakeDLQ) Reject(tag uint64, requeue bool) error { return f.Nack(tag, false, requeue) }

func (f *fakeDLQ) counts() (gets int, acked []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, append([]uint64(nil), f.acked...)
}

// block sends a connection.blocked (active) or unblocked note and returns
// once w has taken it in.
func block(w *blockWatch, notes chan<- amqp.Blocking, active bool) {
	notes <- amqp.Blocking{Active: active, Reason: "low on memory"}
	for {
		a, changed := w.state()
		if (a != nil) == active {
			return
		}
		<-changed
	}
}

// expiredAt returns an after func whose first n waits never end and whose
// later ones end at once; each call is signalled on waiting.
func expiredAt(n int, waiting chan<- struct{}) func(time.Duration) <-chan time.Time {
	calls := 0
	return func(time.Duration) <-chan time.Time {
		calls++
		if waiting != nil {
			waiting <- struct{}{}
		}
		if calls <= n {
			return nil
		}
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
}

// TestRequeueBlockedBeforeConfirm: the broker blocks the connection after
// a dead letter was published and before its confirm; past the wait the
// requeue fails with ErrBlocked, and the message was not removed from the
// queue.
func TestRequeueBlockedBeforeConfirm(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 2)
	// The get's and the publish's waits never end; the confirm's does.
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: expiredAt(2, nil)}
	f.publish = func() { block(w.blocked, notes, true) }
	moved, _, err := requeue(context.Background(), f, nil, w, 2, 10)
	if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "low on memory") {
		t.Fatalf("requeue: %v; want ErrBlocked with the broker's reason", err)
	}
	if gets, acked := f.counts(); len(moved) != 0 || len(acked) != 0 || gets != 1 {
		t.Errorf("%d moved, %d taken, acked %v; want the one taken left in the queue", len(moved), gets, acked)
	}
}

// TestRequeueWaitsOutABlock: while the broker blocks the connection no
// dead letter is taken; once it lifts the block the requeue goes on (here
// to a confirm that never comes: it fails, not blocked, removing nothing).
func TestRequeueWaitsOutABlock(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 1)
	waiting := make(chan struct{}, 4)
	// The waits for the block to lift, the get and the publish never end;
	// the confirm's does.
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: expiredAt(3, waiting)}
	block(w.blocked, notes, true)
	type result struct {
		moved []DeadLetter
		err   error
	}
	done := make(chan result, 1)
	go func() {
		moved, _, err := requeue(context.Background(), f, nil, w, 1, 10)
		done <- result{moved, err}
	}()
	<-waiting // waiting for the block to lift
	if gets, _ := f.counts(); gets != 0 {
		t.Fatalf("%d dead letters taken while the broker blocks the connection", gets)
	}
	block(w.blocked, notes, false)
	r := <-done
	if r.err == nil || errors.Is(r.err, ErrBlocked) || !strings.Contains(r.err.Error(), "no answer") {
		t.Fatalf("requeue: %v; want no confirm, and not blocked", r.err)
	}
	if gets, acked := f.counts(); len(r.moved) != 0 || len(acked) != 0 || gets != 1 {
		t.Errorf("%d moved, %d taken, acked %v; want the one taken left in the queue", len(r.moved), gets, acked)
	}
}

// TestRequeueBlockedTooLong: a block that does not lift within the wait
// stops the requeue before it takes anything.
func TestRequeueBlockedTooLong(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 1)
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: expiredAt(0, nil)}
	block(w.blocked, notes, true)
	_, _, err := requeue(context.Background(), f, nil, w, 1, 10)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("requeue: %v; want ErrBlocked", err)
	}
	if gets, _ := f.counts(); gets != 0 {
		t.Errorf("%d dead letters taken while blocked", gets)
	}
}

// TestRequeuePublishStuck: a publish whose socket write does not return
// (a broker that stopped reading a blocked connection) is given up after
// the wait; the message is not removed.
func TestRequeuePublishStuck(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 1)
	release := make(chan struct{})
	expire := make(chan time.Time)
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: func(time.Duration) <-chan time.Time { return expire }}
	f.publish = func() {
		block(w.blocked, notes, true)
		close(expire)
		<-release
	}
	_, _, err := requeue(context.Background(), f, nil, w, 1, 10)
	close(release)
	if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "publish") {
		t.Fatalf("requeue: %v; want ErrBlocked in the publish", err)
	}
	if _, acked := f.counts(); len(acked) != 0 {
		t.Errorf("acked %v", acked)
	}
}

// blockingProxy forwards AMQP between clients and the broker frame by
// frame until a client publishes: from its basic.publish on, it acts as a
// broker under a resource alarm does, sending the client
// connection.blocked and reading nothing more of it but heartbeats (the
// publish never reaches the broker, nor is it confirmed).
type blockingProxy struct {
	ln     net.Listener
	target string
	// stallOn is the class and method ids of the client's method from
	// which the proxy forwards nothing of the client's but heartbeats;
	// blockReason, when set, is sent to the client as connection.blocked
	// then.
	stallOn     []byte
	blockReason string
}

func newBlockingProxy(t *testing.T, brokerURL string) (proxied string) {
	t.Helper()
	return newStallingProxy(t, brokerURL, []byte{0, 60, 0, 40}, "low on memory (test)") // basic.publish
}

// newStallingProxy is a blockingProxy that stalls from the client's method
// stallOn (class and method ids) on, sending connection.blocked with
// blockReason when it is not "" (else the broker just stops answering).
func newStallingProxy(t *testing.T, brokerURL string, stallOn []byte, blockReason string) (proxied string) {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blockingProxy{ln: ln, target: u.Host, stallOn: stallOn, blockReason: blockReason}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	u.Host = ln.Addr().String()
	return u.String()
}

func (p *blockingProxy) serve(client net.Conn) {
	defer client.Close()
	broker, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer broker.Close()
	var toClient sync.Mutex // whole frames only
	done := make(chan struct{}, 2)
	go func() { // broker -> client
		defer func() { done <- struct{}{} }()
		for {
			f, err := readFrame(broker)
			if err != nil {
				return
			}
			toClient.Lock()
			_, err = client.Write(f)
			toClient.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { // client -> broker
		defer func() { done <- struct{}{} }()
		hdr := make([]byte, 8) // "AMQP" 0 0 9 1
		if _, err := io.ReadFull(client, hdr); err != nil {
			return
		}
		if _, err := broker.Write(hdr); err != nil {
			return
		}
		blocked := false
		for {
			f, err := readFrame(client)
			if err != nil {
				return
			}
			if !blocked && f[0] == 1 && bytes.HasPrefix(f[7:], p.stallOn) {
				blocked = true
				if p.blockReason == "" {
					continue
				}
				reason := p.blockReason
				payload := append([]byte{0, 10, 0, 60, byte(len(reason))}, reason...) // connection.blocked
				frame := append([]byte{1, 0, 0}, binary.BigEndian.AppendUint32(nil, uint32(len(payload)))...)
				frame = append(append(frame, payload...), 0xCE)
				toClient.Lock()
				_, err = client.Write(frame)
				toClient.Unlock()
				if err != nil {
					return
				}
			}
			if blocked && f[0] != 8 { // heartbeats only
				continue
			}
			if _, err := broker.Write(f); err != nil {
				return
			}
		}
	}()
	<-done
}

// readFrame reads one AMQP frame: type, channel, size, payload, 0xCE.
func readFrame(r io.Reader) ([]byte, error) {
	h := make([]byte, 7)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[3:])
	if n > 1<<24 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	f := make([]byte, 7+int(n)+1)
	copy(f, h)
	if _, err := io.ReadFull(r, f[7:]); err != nil {
		return nil, err
	}
	return f, nil
}

// TestRequeueBrokerBlocks: against the real broker behind a proxy that
// blocks the connection once it publishes, a requeue fails with ErrBlocked
// (and the broker's reason) after its wait, instead of waiting for ever
// for a confirm, and the dead letter is still in the queue.
func TestRequeueBrokerBlocks(t *testing.T) {
	u := oneDeadLetter(t)
	done := make(chan error, 1)
	go func() {
		moved, _, err := RequeueDeadLetters(context.Background(), newBlockingProxy(t, u), 10, time.Second)
		if len(moved) != 0 {
			err = fmt.Errorf("%d moved (%w)", len(moved), err)
		}
		done <- err
	}()
	if err := <-done; !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "low on memory (test)") {
		t.Fatalf("requeue through a blocking broker: %v; want ErrBlocked with its reason", err)
	}
	// Back in the queue once the requeue's connection is closed.
	waitOneDeadLetter(t, u, "the dead letter back in the queue")
	left, _, err := BrowseDeadLetters(context.Background(), u, 10)
	if err != nil || len(left) != 1 || left[0].MessageID != "e1" {
		t.Errorf("dead letters after the failed requeue: %+v, %v; want e1 still there", left, err)
	}
}

// TestRequeueBrokerStopsAnsweringGet: against the real broker behind a
// proxy that forwards nothing of the requeue's from its basic.get on (a
// broker that stopped answering), the requeue fails after its wait
// instead of waiting for ever for the dead letter, which stays queued.
func TestRequeueBrokerStopsAnsweringGet(t *testing.T) {
	u := oneDeadLetter(t)
	done := make(chan error, 1)
	go func() {
		moved, _, err := RequeueDeadLetters(context.Background(), newStallingProxy(t, u, []byte{0, 60, 0, 70}, ""), 10, time.Second) // basic.get
		if len(moved) != 0 {
			err = fmt.Errorf("%d moved (%w)", len(moved), err)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer from the broker in 1s") || !strings.Contains(err.Error(), "get from") {
			t.Fatalf("requeue through a broker that stopped answering: %v; want no answer to the get", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("requeue still waiting for the broker's answer to its basic.get 30s on, with --wait 1s")
	}
	left, _, err := BrowseDeadLetters(context.Background(), u, 10)
	if err != nil || len(left) != 1 || left[0].MessageID != "e1" {
		t.Errorf("dead letters after the failed requeue: %+v, %v; want e1 still there", left, err)
	}
}

// oneDeadLetter returns the URL of a vhost of its own whose dead-letter
// queue holds one dead letter, e1.
func oneDeadLetter(t *testing.T) string {
	t.Helper()
	u := bustest.VHost(t)
	ch := declaredChannel(t, u)
	body, err := event.Encode(testEvent(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(context.Background(), DeadLetterExchange, "api.entity.upsert", false, false, amqp.Publishing{
		Headers: amqp.Table{ReasonHeader: "rejected"}, MessageId: "e1", DeliveryMode: amqp.Persistent, Body: body,
	}); err != nil {
		t.Fatal(err)
	}
	waitOneDeadLetter(t, u, "the dead letter")
	return u
}

// waitOneDeadLetter waits until the dead-letter queue of u holds one
// message.
func waitOneDeadLetter(t *testing.T, u, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for queueDepth(t, u, DeadLetterQueue) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
