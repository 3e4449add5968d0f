// Package layering holds the test that keeps Causeway's dependency rules
// (STYLE.md): dependencies point toward pure code. The graph and its
// template and evaluator packages know nothing of AMQP, SQL, raft or HTTP;
// drivers and listeners never import the processor.
package layering
