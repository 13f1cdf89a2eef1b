package moq

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/transport"
)

// This file is bandwidth estimation: our own send-rate estimate, reported to
// the peer on probe streams (lite-03+) or in SESSION_INFO (lite-01/02), and
// the peer's estimate received the same ways.
//
// quic-go exposes no delivery-rate estimate, so the send rate is derived
// from the congestion controller: one congestion window per smoothed round
// trip, 8·cwnd/srtt bits per second. That is the rate the controller allows
// when the window is kept full; it tracks the path's capacity as the window
// grows and shrinks, but overestimates it for an application-limited sender
// whose window has grown beyond what it uses.

// Probe reporting: the estimate is checked every probeInterval and sent when
// it changed by more than a threshold that falls linearly from
// probeMaxChange right after a report to zero probeMaxAge later, so small
// drifts are reported eventually and an unchanged estimate is repeated every
// probeMaxAge.
const (
	probeInterval  = 100 * time.Millisecond
	probeMaxAge    = 10 * time.Second
	probeMaxChange = 0.25
)

// EstimatedSendRate returns the session's estimated send rate in bits per
// second: the congestion window per smoothed RTT (see the package notes in
// probe.go). It is 0 when unknown: before the first RTT sample, or on
// transports that expose no congestion state (QMux over WebSocket).
func (s *Session) EstimatedSendRate() uint64 {
	st, ok := s.conn.(transport.Stats)
	if !ok {
		return 0
	}
	return sendRate(st.ConnectionStats())
}

// RTT returns the smoothed round-trip time of the connection, 0 when the
// transport does not expose it.
func (s *Session) RTT() time.Duration {
	st, ok := s.conn.(transport.Stats)
	if !ok {
		return 0
	}
	return st.ConnectionStats().SmoothedRTT
}

// maxReportedRate caps reported rates at 2^53-1, the largest integer the
// JavaScript peers decode.
const maxReportedRate = 1<<53 - 1

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
// threshold, which shrinks linearly from probeMaxChange at probeInterval
// after the last report to 0 at probeMaxAge.
func shouldReport(sent bool, last, rate uint64, since time.Duration) bool {
	switch {
	case !sent:
		return true
	case last == 0:
		return rate > 0
	}
	elapsed := min(max(since, probeInterval), probeMaxAge)
	threshold := probeMaxChange * float64(probeMaxAge-elapsed) / float64(probeMaxAge-probeInterval)
	change := math.Abs(float64(rate)-float64(last)) / float64(last)
	return change >= threshold
}

// Estimate is a bandwidth estimate the peer reported.
type Estimate struct {
	// Bitrate is the peer's estimate of its send rate to us, in bits per
	// second; 0 means unknown.
	Bitrate uint64
	// RTT is the round-trip time the peer measured (lite-04 PROBE only);
	// 0 means unknown.
	RTT time.Duration
	// Updates counts the reports received so far.
	Updates uint64
}

// estimates holds the peer's latest estimate.
type estimates struct {
	mu      sync.Mutex
	cur     Estimate
	changed chan struct{} // closed and replaced on every update
}

func (e *estimates) update(bitrate uint64, rtt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur.Bitrate, e.cur.RTT = bitrate, rtt
	e.cur.Updates++
	close(e.changed)
	e.changed = make(chan struct{})
}

// RecvEstimate returns the latest bandwidth estimate the peer reported, from
// PROBE (lite-03+, with its RTT in lite-04) or SESSION_INFO (lite-01/02).
// From lite-03 on, the first call of RecvEstimate or WaitRecvEstimate opens
// the probe stream that asks the peer for estimates: sessions do not probe
// unless the application wants the estimates, as the reference peers do.
func (s *Session) RecvEstimate() Estimate {
	s.startProbe()
	s.est.mu.Lock()
	defer s.est.mu.Unlock()
	return s.est.cur
}

// WaitRecvEstimate waits until the peer reported more than after estimates
// (compare Estimate.Updates) and returns the latest. It fails when ctx is
// done or the session ends.
func (s *Session) WaitRecvEstimate(ctx context.Context, after uint64) (Estimate, error) {
	s.startProbe()
	for {
		s.est.mu.Lock()
		cur, changed := s.est.cur, s.est.changed
		s.est.mu.Unlock()
		if cur.Updates > after {
			return cur, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Estimate{}, ctx.Err()
		case <-s.ctx.Done():
			return Estimate{}, s.endCause()
		}
	}
}

// reportEstimates sends our send-rate estimate with send whenever the
// reporting rule says so, until ctx is done or send fails.
func (s *Session) reportEstimates(ctx context.Context, send func(rate uint64) error) {
	ticker := time.NewTicker(probeInterval)
	defer ticker.Stop()
	var r reporter
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			rate := s.EstimatedSendRate()
			if rate == 0 || !r.due(rate, now) {
				continue
			}
			if err := send(rate); err != nil {
				return
			}
		}
	}
}

// serveProbe answers a probe stream the peer opened with our estimates until
// the peer finishes its side. The peer may send PROBE messages with a target
// bitrate; we do not pad the connection, so they are read and ignored. The
// stream is only ever finished, never reset, while the session lives: the
// JavaScript client treats a probe stream error as fatal to the connection.
func (s *Session) serveProbe(cs *controlStream) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	peerDone := make(chan struct{})
	if !s.spawn(func() {
		defer close(peerDone)
		defer cancel()
		for {
			var target lite.Probe
			if err := cs.readMessage(&target, s.version, "PROBE"); err != nil {
				if errors.Is(err, ErrDecode) {
					s.fail(err)
				}
				return
			}
		}
	}) {
		return
	}
	stop := context.AfterFunc(s.ctx, func() { cs.reset(ErrCancel) })
	defer stop()
	s.reportEstimates(ctx, func(rate uint64) error {
		return cs.write(&lite.Probe{Bitrate: rate, RTT: s.RTT()}, s.version)
	})
	if ctx.Err() == nil {
		// The peer stopped reading: stop reading too.
		cs.st.CancelRead(ErrorCode(ErrCancel))
	}
	<-peerDone
	if s.ctx.Err() == nil {
		_ = cs.st.Close()
	}
}

// startProbe opens the probe stream, once, from lite-03 on.
func (s *Session) startProbe() {
	if s.version < lite.Lite03 {
		return
	}
	s.probing.Do(func() { s.spawn(s.runProbe) })
}

// runProbe opens a probe stream (lite-03+) and records the peer's estimates
// until the peer ends the stream or the session ends. A peer that refuses
// probing resets the stream; that is not an error for the session.
func (s *Session) runProbe() {
	cs, err := s.openControl(lite.ControlProbe)
	if err != nil {
		return
	}
	stop := context.AfterFunc(s.ctx, func() { cs.reset(ErrCancel) })
	defer stop()
	if err := cs.flush(cs.buf); err != nil {
		return
	}
	for {
		var p lite.Probe
		err := cs.readMessage(&p, s.version, "PROBE")
		switch {
		case errors.Is(err, io.EOF):
			_ = cs.st.Close()
			return
		case errors.Is(err, ErrDecode):
			s.fail(err)
			return
		case err != nil:
			if s.ctx.Err() == nil {
				s.log.Debug("probe stream ended", "err", streamError(err))
				cs.reset(ErrCancel)
			}
			return
		}
		s.est.update(p.Bitrate, p.RTT)
	}
}

// sendSessionInfo reports our estimates on the lite-01/02 session stream.
func (s *Session) sendSessionInfo(cs *controlStream) {
	s.reportEstimates(s.ctx, func(rate uint64) error {
		return cs.write(&lite.SessionInfo{Bitrate: rate}, s.version)
	})
}
