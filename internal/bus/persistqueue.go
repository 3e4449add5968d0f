package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RecreatePersistQueue gives a PersistQueue declared by an earlier release
// (without a single active consumer, see Topology) the arguments of this
// one, losing nothing. RabbitMQ cannot change a queue's arguments, and a
// quorum queue cannot be deleted only if empty, so it goes step by step,
// telling say what it waits for:
//
//  1. It unbinds the queue from EventsExchange: producers publish as
//     mandatory, so what they publish now comes back to their spools,
//     which keep it until the queue is bound again.
//  2. It waits for the running persisters to empty the queue, then for
//     the operator to stop every persister (no consumer left).
//  3. If messages came back when they stopped (unacked ones), it binds the
//     queue again and fails: start a persister and run it again.
//  4. It deletes the queue and declares the topology again, with the
//     single active consumer; the persisters can start.
//
// Every component must run this release first: an earlier one would fail
// to declare the recreated queue (its arguments differ). On any failure
// before the deletion the binding is restored. No component binds the
// earlier queue again meanwhile (DeclareTopology leaves its bindings as
// they are), so a run killed before it ends leaves it unbound, producers
// keeping their events spooled (Publisher.Returned grows): run it again.
// A queue that already has the single active consumer is left as it is.
func RecreatePersistQueue(ctx context.Context, url string, poll time.Duration, say func(string)) error {
	conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 10 * time.Second, Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer closeConn(conn)
	topo, err := DeclareTopology(conn)
	if err != nil {
		return err
	}
	if topo.SingleActive {
		say("the persist queue has its single active consumer already: nothing to do")
		return nil
	}
	if err := withChannel(conn, func(ch *amqp.Channel) error { return ch.QueueUnbind(PersistQueue, "#", EventsExchange, nil) }); err != nil {
		return fmt.Errorf("unbind %s: %w", PersistQueue, err)
	}
	say(fmt.Sprintf("unbound %s from %s: producers keep what they publish in their spools meanwhile", PersistQueue, EventsExchange))
	deleted := false
	defer func() {
		if deleted {
			return
		}
		if err := withChannel(conn, func(ch *amqp.Channel) error { return ch.QueueBind(PersistQueue, "#", EventsExchange, false, nil) }); err != nil {
			say(fmt.Sprintf("COULD NOT BIND %s AGAIN (%v): bind it to %s with key # before anything else", PersistQueue, err, EventsExchange))
			return
		}
		say(fmt.Sprintf("bound %s to %s again", PersistQueue, EventsExchange))
	}()
	last := ""
	tell := func(s string) {
		if s != last {
			say(s)
			last = s
		}
	}
	if _, err := waitQueue(ctx, conn, poll, func(q amqp.Queue) (bool, string) {
		if q.Consumers == 0 {
			return q.Messages == 0, fmt.Sprintf("%d messages ready and no persister to empty the queue: start one", q.Messages)
		}
		return q.Messages == 0, fmt.Sprintf("waiting for the persisters to empty it: %d messages ready", q.Messages)
	}, tell); err != nil {
		return err
	}
	q, err := waitQueue(ctx, conn, poll, func(q amqp.Queue) (bool, string) {
		return q.Consumers == 0, fmt.Sprintf("empty: stop every persister now (%d consumers left)", q.Consumers)
	}, tell)
	if err != nil {
		return err
	}
	if q.Messages > 0 {
		return fmt.Errorf("%d messages are back in %s (unacked when the persisters stopped): start a persister, and run this again", q.Messages, PersistQueue)
	}
	purged, err := deleteQueue(conn)
	if err != nil {
		return fmt.Errorf("delete %s: %w", PersistQueue, err)
	}
	deleted = true
	if purged > 0 {
		// Not expected: unbound, with no consumer, and empty just before.
		say(fmt.Sprintf("WARNING: %d messages were in %s when it was deleted", purged, PersistQueue))
	}
	if topo, err = DeclareTopology(conn); err != nil {
		return fmt.Errorf("declare %s again (the persisters would declare it when they start): %w", PersistQueue, err)
	}
	if !topo.SingleActive {
		return errors.New("the queue was declared again without the single active consumer: a component of an earlier release got there first")
	}
	say(fmt.Sprintf("%s recreated with a single active consumer and bound: start the persisters", PersistQueue))
	return nil
}

// waitQueue polls PersistQueue until done says so, reporting what it waits
// for, and returns its last state.
func waitQueue(ctx context.Context, conn *amqp.Connection, poll time.Duration, done func(amqp.Queue) (bool, string), say func(string)) (amqp.Queue, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		var q amqp.Queue
		err := withChannel(conn, func(ch *amqp.Channel) error {
			var err error
			q, err = ch.QueueDeclarePassive(PersistQueue, true, false, false, false, nil)
			return err
		})
		if err != nil {
			return q, fmt.Errorf("inspect %s: %w", PersistQueue, err)
		}
		ok, what := done(q)
		if ok {
			return q, nil
		}
		say(what)
		select {
		case <-ctx.Done():
			return q, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

func deleteQueue(conn *amqp.Connection) (int, error) {
	var n int
	err := withChannel(conn, func(ch *amqp.Channel) error {
		var err error
		n, err = ch.QueueDelete(PersistQueue, false, false, false)
		return err
	})
	return n, err
}

// withChannel runs f on a channel of its own, closed afterwards: a
// refusal closes the channel it came on.
func withChannel(conn *amqp.Connection, f func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	return f(ch)
}
