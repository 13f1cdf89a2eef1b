package lite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/serve"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
	"golang.org/x/time/rate"
)

// This file and the other session*.go files are the moq-lite engine: a
// Session runs one negotiated connection, publishing the broadcasts of its
// engine.Config on the peer's request and mirroring the peer's. It reads
// every peer byte through the codecs of this package.

// Limits on what a peer may make us buffer.
const (
	// maxControlMessage bounds one message on a control stream.
	maxControlMessage = 1 << 20
	// maxAnnounceInit bounds the lite-01/02 ANNOUNCE_INIT, which lists every
	// active broadcast under a prefix at once.
	maxAnnounceInit = 16 << 20
	// maxFrameSize bounds one frame, as the JS client does.
	maxFrameSize = wire.MaxMessageSize
	// frameChunk is the largest piece of a frame allocated before its bytes
	// arrive; bigger frames are received in chunks of this size.
	frameChunk = 64 << 10
	// trackEndGrace delays the end of a served subscription after its last
	// group stream was written, because the JS client drops group data that it
	// has not yet read when the subscribe stream ends.
	trackEndGrace = 100 * time.Millisecond
	// peerCloseTimeout bounds the wait for the peer to answer the end of a
	// subscription by closing its side.
	peerCloseTimeout = 2 * time.Second
)

// Session is an established moq-lite session over one transport connection.
// It runs until Shutdown, CloseWithError, or the peer or the connection ends
// it. It implements engine.Session.
type Session struct {
	conn    transport.Session
	version Version
	publish *moq.OriginConsumer
	consume *moq.OriginProducer
	nodeID  uint64
	log     *slog.Logger
	prio    serve.Priorities
	writers serve.Pool // the group streams written at once
	limits  engine.Limits
	cache   moq.CachePolicy
	stats   *engine.Stats
	// unconfirmed paces the peer's subscriptions to tracks not confirmed
	// yet (see engine.Limits.UnconfirmedRate).
	unconfirmed *rate.Limiter
	refusals    atomic.Int64 // requests refused by a limit, for logging

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelCauseFunc
	g      engine.Goroutines // every goroutine of the session

	mu       sync.Mutex
	subs     map[uint64]*subscription // our subscriptions to the peer, by id
	subsPeak int                      // see shrink.Map
	// subsGone is closed and replaced whenever a subscription ends.
	subsGone chan struct{}
	nextID   uint64
	served   map[*served]struct{} // the peer's subscriptions we serve
	// active counts the peer's requests in progress, against the limits.
	active struct{ subscriptions, pending, fetches, interests int }
	// remotes are the broadcasts of the peer consumed locally, which the
	// session's end ends; nil once it ended.
	remotes map[*engine.Remote]struct{}

	est     engine.Estimates // bandwidth estimates learned from the peer
	probing sync.Once        // opens the probe stream on first use
	goaway  goaway           // a GOAWAY received from the peer
	endOnce sync.Once
	err     error // why the session ended; nil for a clean close
}

// New starts running a negotiated session. setup is the lite-01/02 session
// stream left by ExchangeSetup (nil from lite-03 on).
func New(conn transport.Session, version Version, cfg engine.Config, setup *SetupStream) *Session {
	ctx, cancel := context.WithCancelCause(context.Background())
	limits := cfg.Limits.WithDefaults()
	s := &Session{
		conn:        conn,
		version:     version,
		publish:     cfg.Publish,
		consume:     cfg.Consume,
		nodeID:      cfg.NodeID,
		limits:      limits,
		cache:       cfg.Cache,
		stats:       cfg.Stats,
		unconfirmed: rate.NewLimiter(rate.Limit(limits.UnconfirmedRate), limits.MaxPendingSubscriptions),
		log:         cfg.Logger.With("version", version.String(), "remote", conn.RemoteAddr().String()),
		ctx:         ctx,
		cancel:      cancel,
		subs:        make(map[uint64]*subscription),
		subsGone:    make(chan struct{}),
		served:      make(map[*served]struct{}),
		remotes:     make(map[*engine.Remote]struct{}),
		goaway:      goaway{received: make(chan struct{})},
	}
	if s.stats == nil {
		s.stats = new(engine.Stats)
	}
	if limits.MaxGroupStreams < math.MaxInt {
		s.writers = serve.NewPool(limits.MaxGroupStreams)
	}
	s.spawn(s.watchTransport)
	s.spawn(s.acceptBidi)
	s.spawn(s.acceptUni)
	if setup != nil {
		cs := setup.cs
		s.spawn(func() { s.runSessionStream(cs) })
		s.spawn(func() { s.sendSessionInfo(cs) })
	}
	if s.consume != nil {
		for _, prefix := range s.consume.Allowed() {
			s.spawn(func() { s.runAnnounced(prefix) })
		}
	}
	return s
}

// spawn runs f on a goroutine owned by the session: Shutdown waits for it,
// and it must return once s.ctx is done. It reports false, without running
// f, once the session is shutting down.
func (s *Session) spawn(f func()) bool { return s.g.Spawn(f) }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Err returns why the session ended: nil while it runs and after a clean
// close (code 0) by either side, otherwise the error.
func (s *Session) Err() error {
	select {
	case <-s.ctx.Done():
		return s.err
	default:
		return nil
	}
}

// Shutdown ends the session cleanly after delivering what is finished:
// subscriptions whose track has already finished get to send their remaining
// groups until ctx is done, so a publisher can Finish its tracks and shut down
// without cutting off their end. Other subscriptions end at once. Shutdown
// waits for the session's goroutines to exit. It reports a drain that ctx
// cut short, and a failure to close the connection.
func (s *Session) Shutdown(ctx context.Context) error {
	drained := s.drain(ctx)
	closeErr := s.end(nil)
	s.g.Stop()
	return errors.Join(drained, closeErr)
}

// CloseWithError ends the session at once, sending err's code to the peer.
func (s *Session) CloseWithError(err error) error {
	if err == nil {
		err = moq.ErrCancel
	}
	closeErr := s.end(err)
	s.g.Stop()
	return closeErr
}

// drain waits until the served subscriptions whose tracks have finished are
// complete. It fails when ctx is done first.
func (s *Session) drain(ctx context.Context) error {
	s.mu.Lock()
	var waits []<-chan struct{}
	for sv := range s.served {
		if sv.track.IsFinished() {
			waits = append(waits, sv.done)
		}
	}
	s.mu.Unlock()
	for _, done := range waits {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("moq: shutdown before finished tracks were delivered: %w", context.Cause(ctx))
		case <-s.ctx.Done():
			return nil
		}
	}
	return nil
}

// end terminates the session once: err nil closes it cleanly with code 0.
// It returns the error of closing the connection, when this call closed it.
func (s *Session) end(err error) error {
	var closeErr error
	s.endOnce.Do(func() {
		switch remote, ok := errors.AsType[*transport.SessionError](err); {
		case err == nil:
			closeErr = s.conn.CloseWithError(0, "")
		case ok && remote.Remote:
			// The peer closed the session; nothing to send.
			if remote.Code == 0 {
				err = nil
			} else {
				err = fmt.Errorf("moq: session closed by peer: %w", ErrorFromCode(remote.Code))
				if remote.Reason != "" {
					err = fmt.Errorf("%w (%s)", err, remote.Reason)
				}
			}
		default:
			closeErr = s.conn.CloseWithError(ErrorCode(err), err.Error())
		}
		if err != nil {
			s.log.Debug("session ended", "err", err)
		} else {
			s.log.Debug("session closed")
		}
		s.err = err
		s.endRemotes(err)
		s.cancel(sessionEnded(err))
	})
	return closeErr
}

// endCause is why the session ended, as everything waiting on s.ctx sees
// it; moq.ErrClosed while it still runs.
func (s *Session) endCause() error {
	if err := context.Cause(s.ctx); err != nil {
		return err
	}
	return moq.ErrClosed
}

// sessionEnded is the cancellation cause seen by everything waiting on s.ctx.
func sessionEnded(err error) error {
	if err == nil {
		return moq.ErrClosed
	}
	return err
}

// watchTransport ends the session when the connection goes away.
func (s *Session) watchTransport() {
	select {
	case <-s.conn.Context().Done():
		cause := context.Cause(s.conn.Context())
		if cause == nil || errors.Is(cause, context.Canceled) {
			cause = moq.ErrClosed
		}
		s.end(cause)
	case <-s.ctx.Done():
	}
}

// fail ends the session because of a protocol error on our side of the
// exchange: a malformed message or a rule the peer broke.
func (s *Session) fail(err error) {
	s.log.Warn("closing session", "err", err)
	s.end(err)
}

// acceptBidi dispatches the control streams the peer opens.
func (s *Session) acceptBidi() {
	for {
		st, err := s.conn.AcceptStream(s.ctx)
		if err != nil {
			return
		}
		s.spawn(func() { s.handleBidi(newControlStream(st)) })
	}
}

// handleBidi reads the type and the request a control stream the peer
// opened starts with, within the request timeout, and serves it.
func (s *Session) handleBidi(cs *controlStream) {
	inTime := s.deadline("control stream", func() { cs.reset(moq.ErrTimeout) })
	kind, err := ReadControlType(cs.r, s.version)
	switch {
	case errors.Is(err, ErrVersion) || errors.Is(err, wire.ErrInvalid):
		// Unknown stream types are refused one by one so peers can probe
		// for extensions; they do not end the session.
		inTime()
		s.log.Debug("refusing control stream", "err", err)
		cs.reset(moq.ErrUnexpectedStream)
		return
	case err != nil:
		inTime()
		cs.reset(moq.ErrCancel)
		return
	}
	// read reads the request, the first message, and stops the deadline.
	read := func(m Message, what string) bool {
		err := cs.read(m, s.version, what)
		if !inTime() {
			return false // the deadline reset the stream
		}
		if err != nil {
			s.controlFailed(cs, err)
			return false
		}
		return true
	}
	switch kind {
	case ControlAnnounce:
		var m AnnounceInterest
		if read(&m, "ANNOUNCE_INTEREST") {
			s.serveAnnounce(cs, &m)
		}
	case ControlSubscribe:
		var m Subscribe
		if read(&m, "SUBSCRIBE") {
			s.serveSubscribe(cs, &m)
		}
	case ControlFetch:
		var m Fetch
		if read(&m, "FETCH") {
			s.serveFetch(cs, &m)
		}
	case ControlProbe:
		// The opener writes nothing more.
		if inTime() {
			s.serveProbe(cs)
		}
	case ControlGoaway:
		var m Goaway
		if read(&m, "GOAWAY") {
			s.recvGoaway(cs, &m)
		}
	default:
		// The session stream is the one that carried SETUP.
		inTime()
		cs.reset(moq.ErrProtocolViolation)
		s.fail(fmt.Errorf("%w: a second session stream", moq.ErrProtocolViolation))
	}
}

// deadline runs expired after the request timeout unless the returned
// function is called first; that function reports whether it was.
func (s *Session) deadline(what string, expired func()) (inTime func() bool) {
	timer := time.AfterFunc(s.limits.RequestTimeout, func() {
		s.log.Debug("stream sent no request in time", "stream", what, "timeout", s.limits.RequestTimeout)
		expired()
	})
	return timer.Stop
}

// take counts one more of the peer's requests of a kind in *n, unless max
// are in progress; give counts it out again.
func (s *Session) take(n *int, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *n >= max {
		return false
	}
	*n++
	return true
}

func (s *Session) give(n *int) {
	s.mu.Lock()
	*n--
	s.mu.Unlock()
}

// refuse resets a stream whose request a limit refused, logging why: the
// first refusals of a session and then one in a thousand, so a hostile peer
// cannot flood the log.
func (s *Session) refuse(cs *controlStream, what string, limit int) {
	if n := s.refusals.Add(1); n <= 8 || n%1000 == 0 {
		s.log.Warn("refusing a request over a limit", "request", what, "limit", limit, "refusals", n)
	}
	cs.reset(moq.ErrBoundsExceeded)
}

// acceptUni receives the group streams the peer opens.
func (s *Session) acceptUni() {
	for {
		st, err := s.conn.AcceptUniStream(s.ctx)
		if err != nil {
			return
		}
		s.spawn(func() { s.recvGroup(st) })
	}
}

// runSessionStream reads SESSION_INFO on the lite-01/02 session stream; the
// stream's end ends the session.
func (s *Session) runSessionStream(cs *controlStream) {
	stop := context.AfterFunc(s.ctx, func() { cs.reset(moq.ErrCancel) })
	defer stop()
	for {
		var info SessionInfo
		err := cs.read(&info, s.version, "SESSION_INFO")
		switch {
		case errors.Is(err, io.EOF):
			s.end(nil)
			return
		case errors.Is(err, moq.ErrDecode):
			s.fail(err)
			return
		case err != nil:
			if s.ctx.Err() == nil {
				if _, closed := errors.AsType[*transport.SessionError](err); closed {
					// The whole session closed: end it as watchTransport
					// does, so that a clean close by the peer stays clean.
					s.end(err)
				} else {
					s.end(streamError(err))
				}
			}
			return
		}
		s.est.Update(info.Bitrate, 0)
	}
}

var _ engine.Session = (*Session)(nil)
