package notifier

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled by subscription id: bounded by the subscriptions an
// operator configures, never by alarm or entity.
type metrics struct {
	backlog      *prometheus.GaugeVec
	oldestAge    *prometheus.GaugeVec
	overLimit    *prometheus.GaugeVec
	attempts     *prometheus.CounterVec
	failures     *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	leases       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_notifier_backlog_rows", Help: "Rows queued for a subscriber and not yet delivered (as last counted).",
		}, []string{"subscription"}),
		oldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_notifier_oldest_pending_age_seconds", Help: "Age of a subscriber's oldest undelivered row (0 when none).",
		}, []string{"subscription"}),
		overLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_notifier_backlog_over_limit", Help: "1 while a subscriber's backlog is over its max_backlog.",
		}, []string{"subscription"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_notifier_delivery_attempts_total", Help: "HTTP delivery attempts.",
		}, []string{"subscription"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_notifier_delivery_failures_total", Help: "HTTP delivery attempts that failed (error or non-2xx).",
		}, []string{"subscription"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_notifier_delivered_total", Help: "Rows delivered (2xx).",
		}, []string{"subscription"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_notifier_dead_lettered_total", Help: "Rows moved to the dead-letter table, by reason (expired, backlog, deleted, refused).",
		}, []string{"subscription", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_notifier_delivery_latency_seconds",
			Help:    "From a row being queued by the leader to its successful delivery.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 20),
		}, []string{"subscription"}),
		leases: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_notifier_leases_held", Help: "Subscribers this instance drains now.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.backlog, m.oldestAge, m.overLimit, m.attempts, m.failures, m.delivered, m.deadLettered, m.latency, m.leases} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return nil, fmt.Errorf("register notifier metrics: %w", err)
		}
	}
	return m, nil
}

// forget removes every series of subscriber id.
func (m *metrics) forget(id string) {
	for _, v := range []interface{ DeleteLabelValues(...string) bool }{m.backlog, m.oldestAge, m.overLimit, m.attempts, m.failures, m.delivered, m.latency} {
		v.DeleteLabelValues(id)
	}
	m.deadLettered.DeletePartialMatch(prometheus.Labels{"subscription": id})
}
