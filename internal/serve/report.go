package serve

import (
	"context"
	"math"
	"time"

	"github.com/moqgo/moq/transport"
)

// Bandwidth estimation: the send-rate estimate a session reports to its
// peer. quic-go exposes no delivery-rate estimate, so the rate is derived
// from the congestion controller: one congestion window per smoothed round
// trip, 8·cwnd/srtt bits per second. That is the rate the controller allows
// when the window is kept full; it tracks the path's capacity as the window
// grows and shrinks, but overestimates it for an application-limited sender
// whose window has grown beyond what it uses.
//
// Reporting: the estimate is checked every ReportInterval and sent when it
// changed by more than a threshold that falls linearly from maxChange right
// after a report to zero maxAge later, so small drifts are reported
// eventually and an unchanged estimate is repeated every maxAge.
const (
	ReportInterval = 100 * time.Millisecond
	maxAge         = 10 * time.Second
	maxChange      = 0.25
)

// maxReportedRate caps reported rates at 2^53-1, the largest integer the
// JavaScript peers decode.
const maxReportedRate = 1<<53 - 1

// SendRate returns conn's estimated send rate in bits per second (see
// above), 0 when unknown: before the first RTT sample, or on transports that
// expose no congestion state (QMux over WebSocket).
func SendRate(conn transport.Session) uint64 {
	st, ok := conn.(transport.Stats)
	if !ok {
		return 0
	}
	return sendRate(st.ConnectionStats())
}

// RTT returns conn's smoothed round-trip time, 0 when the transport does not
// expose it.
func RTT(conn transport.Session) time.Duration {
	st, ok := conn.(transport.Stats)
	if !ok {
		return 0
	}
	return st.ConnectionStats().SmoothedRTT
}

// sendRate is 8·cwnd/srtt in bits per second, 0 without an RTT sample.
func sendRate(st transport.ConnectionStats) uint64 {
	if st.SmoothedRTT <= 0 || st.CongestionWindow == 0 {
		return 0
	}
	bps := float64(st.CongestionWindow) * 8 / st.SmoothedRTT.Seconds()
	if bps >= maxReportedRate {
		return maxReportedRate
	}
	return max(uint64(bps), 1)
}

// Report sends conn's send-rate estimate with send whenever the reporting
// rule says so, until ctx is done or send fails.
func Report(ctx context.Context, conn transport.Session, send func(rate uint64) error) {
	ticker := time.NewTicker(ReportInterval)
	defer ticker.Stop()
	var r reporter
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			rate := SendRate(conn)
			if rate == 0 || !r.due(rate, now) {
				continue
			}
			if err := send(rate); err != nil {
				return
			}
		}
	}
}

// reporter decides when an estimate is worth sending again.
type reporter struct {
	last uint64
	at   time.Time
	sent bool
}

// due reports whether rate should be sent at now, and records it if so.
func (r *reporter) due(rate uint64, now time.Time) bool {
	if !shouldReport(r.sent, r.last, rate, now.Sub(r.at)) {
		return false
	}
	r.last, r.at, r.sent = rate, now, true
	return true
}

// shouldReport is the reporting rule: always the first time; after a report
// of 0, any non-zero rate; otherwise a relative change of at least the
// threshold, which shrinks linearly from maxChange at ReportInterval after
// the last report to 0 at maxAge.
func shouldReport(sent bool, last, rate uint64, since time.Duration) bool {
	switch {
	case !sent:
		return true
	case last == 0:
		return rate > 0
	}
	elapsed := min(max(since, ReportInterval), maxAge)
	threshold := maxChange * float64(maxAge-elapsed) / float64(maxAge-ReportInterval)
	change := math.Abs(float64(rate)-float64(last)) / float64(last)
	return change >= threshold
}
