// Package metrics defines fluxbridge's Prometheus metrics on a registry of its own, so tests can
// create as many as they like.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors of one process.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec   // by route, method, code
	HTTPDuration *prometheus.HistogramVec // by route, method
	Webhook      *prometheus.CounterVec   // by cluster, result
	Jobs         *prometheus.CounterVec   // by kind, outcome
	JobDuration  *prometheus.HistogramVec // by kind
	// Refusals counts changes refused by a guard (approvals, ownership, isolation,
	// credentials, permissions), by guard; nothing was written for any of them.
	Refusals *prometheus.CounterVec
}

// New registers every collector (and the Go and process collectors) on a new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxbridge_http_requests_total", Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fluxbridge_http_request_duration_seconds", Help: "HTTP request latency, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		Webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxbridge_webhook_events_total", Help: "Flux webhook deliveries, by cluster and result (accepted, duplicate, unauthorized, invalid, too_large, unknown_cluster, error).",
		}, []string{"cluster", "result"}),
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxbridge_jobs_total", Help: "Jobs worked, by kind and outcome (ok, error, cancel, snooze).",
		}, []string{"kind", "outcome"}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fluxbridge_job_duration_seconds", Help: "Time spent working a job, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"kind"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fluxbridge_refusals_total",
			Help: "Changes refused by a guard, by guard (permission, bootstrap_requires_maintainer, foreign_object, reserved_object, credential_url, credential_secret, environment_overlap, foreign_namespace, service_account, cross_project_reference, proposal_pending, not_approved).",
		}, []string{"guard"}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.Webhook, m.Jobs, m.JobDuration, m.Refusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Refused counts one refusal by guard.
func (m *Metrics) Refused(guard string) {
	if m == nil {
		return
	}
	m.Refusals.WithLabelValues(guard).Inc()
}

// ObserveJob counts one worked job.
func (m *Metrics) ObserveJob(kind, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.Jobs.WithLabelValues(kind, outcome).Inc()
	m.JobDuration.WithLabelValues(kind).Observe(d.Seconds())
}
