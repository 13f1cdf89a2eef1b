package qmux

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Liveness defaults, used when an option is zero.
const (
	// DefaultIdleTimeout is how long a session waits without receiving anything
	// before it closes itself, as raw QUIC does here and as @moq/qmux 0.3.x declares.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultKeepAlivePeriod is how long a session waits without receiving
	// anything before it sends a WebSocket ping.
	DefaultKeepAlivePeriod = 10 * time.Second

	// defaultCloseTimeout bounds the close frame, the WebSocket close handshake and
	// the wait for the peer when a session ends; then the connection is cut.
	defaultCloseTimeout = time.Second
)

// liveness holds the resolved idle timeout and keep-alive period of a session
// (0 = disabled) and what it needs to enforce them on its connection.
type liveness struct {
	idle      time.Duration
	keepAlive time.Duration
	clock     *recvClock
	netConn   net.Conn // the connection under the WebSocket, if known; closed to abort
}

// resolveLiveness applies the defaults to option values: zero means the default,
// negative disables.
func resolveLiveness(idle, keepAlive time.Duration) liveness {
	resolve := func(d, def time.Duration) time.Duration {
		switch {
		case d == 0:
			return def
		case d < 0:
			return 0
		default:
			return d
		}
	}
	return liveness{
		idle:      resolve(idle, DefaultIdleTimeout),
		keepAlive: resolve(keepAlive, DefaultKeepAlivePeriod),
		clock:     newRecvClock(),
	}
}

// recvClock records when anything was last received on a connection: the
// session's reader marks every message, the WebSocket's ping and pong callbacks
// mark control frames (which the application never sees).
type recvClock struct {
	start time.Time
	last  atomic.Int64 // nanoseconds after start
}

func newRecvClock() *recvClock { return &recvClock{start: time.Now()} }

func (c *recvClock) mark() { c.last.Store(int64(time.Since(c.start))) }

// quiet returns how long ago something was last received (or the clock started).
func (c *recvClock) quiet() time.Duration {
	return time.Since(c.start) - time.Duration(c.last.Load())
}

func (c *recvClock) onPing(context.Context, []byte) bool {
	c.mark()
	return true // answer it
}

func (c *recvClock) onPong(context.Context, []byte) { c.mark() }

// peerIdleLocked returns the max_idle_timeout the peer declared, 0 if none.
func (s *session) peerIdleLocked() time.Duration {
	ms := s.peerParams.MaxIdleTimeout
	if ms == 0 || ms > math.MaxInt64/uint64(time.Millisecond) {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// idleLocked returns the idle timeout the session enforces, 0 if none: ours,
// lowered to the peer's if the peer declared a smaller one (RFC 9000 §10.1).
func (s *session) idleLocked() time.Duration {
	d := s.live.idle
	if p := s.peerIdleLocked(); d > 0 && p > 0 && p < d {
		d = p
	}
	return d
}

// keepAliveLocked returns how long the session stays quiet before it pings, 0
// if it never does: the configured period, at most half of the smaller idle
// timeout of the two sides, so that neither side's timer can expire first.
func (s *session) keepAliveLocked() time.Duration {
	k := s.live.keepAlive
	if k <= 0 {
		return 0
	}
	limit := s.live.idle
	if p := s.peerIdleLocked(); p > 0 && (limit <= 0 || p < limit) {
		limit = p
	}
	if limit > 0 && k > limit/2 {
		k = max(limit/2, time.Millisecond)
	}
	return k
}

// checkIdle runs when the idle timer fires.
func (s *session) checkIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rearmIdleLocked()
}

// rearmIdleLocked closes the session if nothing was received for the idle
// timeout, and otherwise sets the idle timer for when that would be the case.
// While the reader waits for the application (legacy back-pressure), frames
// are not read at all: that is not the peer's silence, so the timer restarts.
func (s *session) rearmIdleLocked() {
	if s.closed || s.idleTimer == nil {
		return
	}
	idle := s.idleLocked()
	if s.readerPaused {
		s.idleTimer.Reset(idle)
		return
	}
	quiet := s.live.clock.quiet()
	if quiet < idle {
		s.idleTimer.Reset(idle - quiet)
		return
	}
	// As in QUIC the session ends without a close frame: the peer is presumed
	// gone. The WebSocket close handshake still says why, in case it is not.
	s.wsCloseCode, s.wsCloseReason = websocket.StatusGoingAway, "idle timeout"
	s.closeLocked(fmt.Errorf("%w: nothing received for %v", ErrIdleTimeout, idle), nil)
}

// keepAliveLoop pings the peer whenever nothing was received for the keep-alive
// period. Browsers and WebSocket libraries (the npm ws package among them)
// answer pings with pongs by themselves, and a pong counts as traffic; a peer
// that pings us is answered the same way by the WebSocket library.
//
// No ping is sent while the reader waits for the application (the pong would
// not be read) or while a write has been stuck for stallThreshold: the
// WebSocket library gives a control frame 5 s to be written and then cuts the
// connection, which must remain the idle timer's decision.
func (s *session) keepAliveLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		period := s.keepAliveLocked()
		paused := s.readerPaused
		wake := waitCh(&s.keepAliveWake)
		s.mu.Unlock()
		var fire <-chan time.Time
		if period > 0 {
			wait := period - s.live.clock.quiet()
			if wait <= 0 {
				if !paused && !s.writeStalled() && s.ping(period) == nil {
					continue
				}
				wait = period // try again later
			}
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-s.ctx.Done():
			return
		case <-wake:
		case <-fire:
		}
	}
}

// ping sends a WebSocket ping and waits for the pong, the end of the
// connection or the abort of its I/O, or at most max(3 periods, 5 s), so that a
// peer that never answers does not stop the keep-alive. The wait is not tied to
// the session's context: a ping abandoned half-written would make the library
// cut the connection before the close frame goes out, and the library itself
// gives the write 5 s.
func (s *session) ping(period time.Duration) error {
	ctx, cancel := context.WithTimeout(s.ioCtx, max(3*period, 5*time.Second))
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		return err
	}
	s.live.clock.mark()
	return nil
}

// stallThreshold is how long one WebSocket write may take before the writer
// counts as stuck (the peer does not read, or the network is stalled).
const stallThreshold = time.Second

// writeStalled reports whether the writer has been stuck in one write for
// stallThreshold.
func (s *session) writeStalled() bool {
	since := s.writeSince.Load()
	return since != 0 && time.Since(s.live.clock.start)-time.Duration(since-1) >= stallThreshold
}

// writing records the start (or, with false, the end) of a WebSocket write.
func (s *session) writing(on bool) {
	if s.live.clock == nil {
		return
	}
	var v int64
	if on {
		v = int64(time.Since(s.live.clock.start)) + 1 // 0 means no write
	}
	s.writeSince.Store(v)
}

// abort cuts the connection: pending WebSocket I/O fails at once.
func (s *session) abort() {
	s.ioCancel() // the WebSocket closes itself when a read or write is interrupted
	if s.live.netConn != nil {
		_ = s.live.netConn.Close() // and nothing else is left waiting on it
	}
}

// hijackRecorder remembers the connection an upgrade hijacks, so that a session
// can cut it when closing takes too long.
type hijackRecorder struct {
	http.ResponseWriter
	hj   http.Hijacker
	conn net.Conn
}

// recordHijack wraps w if it can be hijacked, and returns it unchanged otherwise
// (the upgrade then fails as it would have).
func recordHijack(w http.ResponseWriter) (http.ResponseWriter, *hijackRecorder) {
	rw := w
	for {
		switch t := rw.(type) {
		case http.Hijacker:
			if _, gin := w.(interface{ WriteHeaderNow() }); gin {
				return w, nil // a wrapper would hide the method the upgrade calls
			}
			h := &hijackRecorder{ResponseWriter: w, hj: t}
			return h, h
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return w, nil
		}
	}
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := h.hj.Hijack()
	if err == nil {
		h.conn = c
	}
	return c, brw, err
}

func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }
