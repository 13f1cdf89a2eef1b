package relay

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/session"
)

// metrics are what the relay reports on its operations listener.
type metrics struct {
	registry   *prometheus.Registry
	sessions   *prometheus.GaugeVec   // open sessions by transport and version
	accepted   *prometheus.CounterVec // sessions accepted by transport and version
	refused    *prometheus.CounterVec // sessions refused by reason
	handshake  prometheus.Histogram   // seconds from request to session
	broadcasts prometheus.Gauge       // broadcasts announced at the relay
}

func newMetrics(stats *session.Stats, cache *moq.CacheBudget) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moq_relay_sessions", Help: "Sessions open, by transport and protocol version.",
		}, []string{"transport", "version"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moq_relay_sessions_accepted_total", Help: "Sessions accepted, by transport and protocol version.",
		}, []string{"transport", "version"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moq_relay_sessions_refused_total", Help: "Sessions refused, by reason (auth reasons start with auth_).",
		}, []string{"reason"}),
		handshake: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "moq_relay_handshake_seconds",
			Help:    "Time from a session request to the session running.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		broadcasts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moq_relay_broadcasts", Help: "Broadcasts announced at the relay.",
		}),
	}
	counter := func(name, help string, v func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
	}
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v)
	}
	m.registry.MustRegister(m.sessions, m.accepted, m.refused, m.handshake, m.broadcasts,
		gauge("moq_relay_subscriptions", "Subscriptions of peers being served.", func() float64 { return float64(stats.Subscriptions.Load()) }),
		counter("moq_relay_groups_out_total", "Groups written to peers.", stats.GroupsOut.Load),
		counter("moq_relay_bytes_out_total", "Payload bytes written to peers.", stats.BytesOut.Load),
		counter("moq_relay_groups_in_total", "Groups received from peers.", stats.GroupsIn.Load),
		counter("moq_relay_bytes_in_total", "Payload bytes received from peers.", stats.BytesIn.Load),
		counter("moq_relay_groups_dropped_total", "Groups reported dropped to subscribers.", stats.GroupsDropped.Load),
		gauge("moq_relay_cache_bytes", "Payload bytes the relay's tracks cache.", func() float64 { return float64(cache.Used()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// opsHandler serves the operations listener: Prometheus metrics, liveness,
// readiness (false while the relay drains) and the Go profiler.
func (r *Relay) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !r.accepting() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
