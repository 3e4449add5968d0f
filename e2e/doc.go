// Package e2e holds Causeway's end-to-end tests: the real binary, built
// into a temporary folder, run as separate processes on loopback against
// the real RabbitMQ and MariaDB, exactly as an operator would run it.
//
// The tests carry the build tag e2e and names containing E2E, so
// `make test-e2e` (go test -count=1 -p 1 -tags e2e -run E2E ./...) runs
// them. TestChaosE2E is the chaos test of the whole product: under a steady
// load of events and webhook subscribers it kills -9 each component in
// turn (listener, persister, raft leader, a follower, notifier), restarts
// RabbitMQ and MariaDB, and then checks the invariants of DESIGN.md end to
// end — every accepted event is in the log exactly once, every node's graph
// equals a fresh reconstruction from the log, every notification was
// delivered in order per subscriber — and prints a table of what it saw.
//
// Restarting RabbitMQ and MariaDB disturbs everything else on the machine:
// the test must run alone (make test-e2e runs packages one at a time) and
// as root (deploy/services.sh). Environment:
//
//	CAUSEWAY_E2E_EVENTS   events to send (default 50000)
//	CAUSEWAY_E2E_FAULTS   comma-separated fault kinds, in order (default:
//	                      listener,persister,leader,follower,notifier,rabbitmq,
//	                      mariadb,listener,persister,leader,follower,notifier,spool;
//	                      spool = broker stopped, listener killed -9 with a full
//	                      spool and restarted on it, broker started)
//	CAUSEWAY_E2E_RATE     events per second the load aims at (default 1500; 0: as fast as accepted)
//	CAUSEWAY_E2E_WORKERS  concurrent HTTP clients of the load (default 8)
//	CAUSEWAY_E2E_RACE     build the binary with -race when set
//	CAUSEWAY_E2E_LOG_DIR  keep the components' logs in this folder (default:
//	                      the test's temporary folder; their tails are shown
//	                      when the test fails)
package e2e
