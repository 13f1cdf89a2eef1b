package lite

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/serve"
)

// This file is bandwidth estimation: our send-rate estimate (see
// serve.SendRate), reported to the peer on probe streams (lite-03+) or in
// SESSION_INFO (lite-01/02), and the peer's estimate received the same ways.

// EstimatedSendRate returns the session's estimated send rate in bits per
// second; 0 when unknown.
func (s *Session) EstimatedSendRate() uint64 { return serve.SendRate(s.conn) }

// RTT returns the smoothed round-trip time of the connection, 0 when the
// transport does not expose it.
func (s *Session) RTT() time.Duration { return serve.RTT(s.conn) }

// RecvEstimate returns the latest bandwidth estimate the peer reported, from
// PROBE (lite-03+, with its RTT in lite-04) or SESSION_INFO (lite-01/02).
// From lite-03 on, the first call of RecvEstimate or WaitRecvEstimate opens
// the probe stream that asks the peer for estimates: sessions do not probe
// unless the application wants the estimates, as the reference peers do.
func (s *Session) RecvEstimate() engine.Estimate {
	s.startProbe()
	return s.est.Latest()
}

// WaitRecvEstimate waits until the peer reported more than after estimates
// (compare Estimate.Updates) and returns the latest. It fails when ctx is
// done or the session ends.
func (s *Session) WaitRecvEstimate(ctx context.Context, after uint64) (engine.Estimate, error) {
	s.startProbe()
	return s.est.Wait(ctx, s.ctx, after)
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
			var target Probe
			if err := cs.read(&target, s.version, "PROBE"); err != nil {
				switch {
				case errors.Is(err, moq.ErrDecode):
					s.fail(err)
				case !errors.Is(err, io.EOF):
					// Unread data would hold connection credit: stop
					// the peer's side (an oversized message ends here).
					cs.st.CancelRead(ErrorCode(streamError(err)))
				}
				return
			}
		}
	}) {
		return
	}
	stop := context.AfterFunc(s.ctx, func() { cs.reset(moq.ErrCancel) })
	defer stop()
	serve.Report(ctx, s.conn, func(rate uint64) error {
		return cs.write(ctx, &Probe{Bitrate: rate, RTT: s.RTT()}, s.version)
	})
	if ctx.Err() == nil {
		// The peer stopped reading: stop reading too.
		cs.st.CancelRead(ErrorCode(moq.ErrCancel))
	}
	<-peerDone
	if s.ctx.Err() == nil {
		_ = cs.st.Close()
	}
}

// startProbe opens the probe stream, once, from lite-03 on.
func (s *Session) startProbe() {
	if s.version < Lite03 {
		return
	}
	s.probing.Do(func() { s.spawn(s.runProbe) })
}

// runProbe opens a probe stream (lite-03+) and records the peer's estimates
// until the peer ends the stream or the session ends. A peer that refuses
// probing resets the stream; that is not an error for the session.
func (s *Session) runProbe() {
	cs, err := s.openControl(s.ctx, ControlProbe)
	if err != nil {
		return
	}
	stop := context.AfterFunc(s.ctx, func() { cs.reset(moq.ErrCancel) })
	defer stop()
	// The stream type is all the opener writes.
	if err := cs.send(s.ctx, func(b []byte) ([]byte, error) { return b, nil }); err != nil {
		return
	}
	for {
		var p Probe
		err := cs.read(&p, s.version, "PROBE")
		switch {
		case errors.Is(err, io.EOF):
			_ = cs.st.Close()
			return
		case errors.Is(err, moq.ErrDecode):
			s.fail(err)
			return
		case err != nil:
			if s.ctx.Err() == nil {
				s.log.Debug("probe stream ended", "err", streamError(err))
				cs.reset(moq.ErrCancel)
			}
			return
		}
		s.est.Update(p.Bitrate, p.RTT)
	}
}

// sendSessionInfo reports our estimates on the lite-01/02 session stream.
func (s *Session) sendSessionInfo(cs *controlStream) {
	serve.Report(s.ctx, s.conn, func(rate uint64) error {
		return cs.write(s.ctx, &SessionInfo{Bitrate: rate}, s.version)
	})
}
