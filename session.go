package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

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
	// maxGroupsInFlight bounds the group streams one subscription writes at
	// once. Further groups wait in the track's cache, which bounds memory by age.
	maxGroupsInFlight = 64
	// trackEndGrace delays the end of a served subscription after its last
	// group stream was written, because the JS client drops group data that it
	// has not yet read when the subscribe stream ends.
	trackEndGrace = 100 * time.Millisecond
	// closeTimeout bounds how long Close waits for finished tracks to flush.
	closeTimeout = 10 * time.Second
	// peerCloseTimeout bounds the wait for the peer to answer the end of a
	// subscription by closing its side.
	peerCloseTimeout = 2 * time.Second
)

// Config describes what a session publishes and consumes, and how Dial connects.
type Config struct {
	// Publish holds the broadcasts offered to the peer: it answers the peer's
	// announcement interest and serves its subscriptions. Nil publishes nothing.
	Publish *OriginConsumer
	// Consume receives the broadcasts the peer announces under Consume's allowed
	// prefixes; their tracks are subscribed on demand. Nil consumes nothing.
	Consume *OriginProducer
	// Versions restricts the versions offered or accepted, most preferred first.
	// Empty means DefaultVersions.
	Versions []Version
	// Logger receives session events. Nil uses slog.Default().
	Logger *slog.Logger
	// NodeID identifies this endpoint in announcement hop lists, as relays
	// do (0 means none): it is appended to the hops of every broadcast the
	// session announces, announcements whose hops already hold it are
	// ignored (they went round a loop), and from lite-04 on the session asks
	// the peer not to announce them at all (exclude_hop). Hop ids travel
	// only from lite-04 on; lite-03 carries their count, older versions
	// nothing.
	NodeID uint64

	// Dial options: see Dial.
	DialOptions
}

func (c *Config) versions() []Version {
	if len(c.Versions) == 0 {
		return DefaultVersions
	}
	return c.Versions
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// Session is an established moq-lite session over one transport connection.
// It runs until Close, CloseWithError, or the peer or the connection ends it.
type Session struct {
	conn    transport.Session
	version lite.Version
	publish *OriginConsumer
	consume *OriginProducer
	nodeID  uint64
	log     *slog.Logger
	prio    *priorityQueue

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelCauseFunc
	g      goroutines // every goroutine of the session

	mu   sync.Mutex
	subs map[uint64]*subscription // our subscriptions to the peer, by id
	// subsGone is closed and replaced whenever a subscription ends.
	subsGone chan struct{}
	nextID   uint64
	served   map[*served]struct{} // the peer's subscriptions we serve

	est     estimates // bandwidth estimates learned from the peer
	probing sync.Once // opens the probe stream on first use
	goaway  goaway    // a GOAWAY received from the peer
	endOnce sync.Once
	err     error // why the session ended; nil for a clean close
}

// newSession starts running a negotiated session. setup is the lite-01/02
// session stream (nil from lite-03 on).
func newSession(conn transport.Session, version lite.Version, cfg *Config, setup *controlStream) *Session {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Session{
		conn:     conn,
		version:  version,
		publish:  cfg.Publish,
		consume:  cfg.Consume,
		nodeID:   cfg.NodeID,
		log:      cfg.logger().With("version", version.String(), "remote", conn.RemoteAddr().String()),
		prio:     newPriorityQueue(),
		ctx:      ctx,
		cancel:   cancel,
		subs:     make(map[uint64]*subscription),
		subsGone: make(chan struct{}),
		served:   make(map[*served]struct{}),
		goaway:   goaway{received: make(chan struct{})},
	}
	s.est.changed = make(chan struct{})
	s.spawn(s.watchTransport)
	s.spawn(s.acceptBidi)
	s.spawn(s.acceptUni)
	if setup != nil {
		s.spawn(func() { s.runSessionStream(setup) })
		s.spawn(func() { s.sendSessionInfo(setup) })
	}
	if s.consume != nil {
		for _, prefix := range s.consume.Allowed() {
			s.spawn(func() { s.runAnnounced(prefix) })
		}
	}
	return s
}

// spawn runs f on a goroutine owned by the session: Close waits for it, and it
// must return once s.ctx is done. It reports false, without running f, once
// the session is shutting down.
func (s *Session) spawn(f func()) bool { return s.g.spawn(f) }

// waitGoroutines stops new goroutines and waits for the running ones.
func (s *Session) waitGoroutines() { s.g.stop() }

// Version returns the negotiated protocol version.
func (s *Session) Version() Version { return Version(s.version) }

// Protocol returns the transport's negotiated application protocol, "" if none.
func (s *Session) Protocol() string { return s.conn.Protocol() }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Err returns why the session ended: nil while it runs and after a clean close
// (code 0) by either side, otherwise the error.
func (s *Session) Err() error {
	select {
	case <-s.ctx.Done():
		return s.err
	default:
		return nil
	}
}

// Wait blocks until the session ends or ctx is done, and returns Err.
func (s *Session) Wait(ctx context.Context) error {
	select {
	case <-s.ctx.Done():
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends the session cleanly: it is Shutdown with a ten-second limit.
func (s *Session) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown ends the session cleanly after delivering what is finished:
// subscriptions whose track has already finished get to send their remaining
// groups until ctx is done, so a publisher can Finish its tracks and shut down
// without cutting off their end. Other subscriptions end at once. Shutdown
// waits for the session's goroutines to exit.
func (s *Session) Shutdown(ctx context.Context) error {
	s.drain(ctx)
	s.end(nil)
	s.waitGoroutines()
	return nil
}

// CloseWithError ends the session at once, sending err's code to the peer.
func (s *Session) CloseWithError(err error) error {
	if err == nil {
		err = ErrCancel
	}
	s.end(err)
	s.waitGoroutines()
	return nil
}

// drain waits until the served subscriptions whose tracks have finished are
// complete, or ctx is done.
func (s *Session) drain(ctx context.Context) {
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
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// end terminates the session once: err nil closes it cleanly with code 0.
func (s *Session) end(err error) {
	s.endOnce.Do(func() {
		var remote *transport.SessionError
		switch {
		case err == nil:
			_ = s.conn.CloseWithError(0, "")
		case errors.As(err, &remote) && remote.Remote:
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
			_ = s.conn.CloseWithError(ErrorCode(err), err.Error())
		}
		if err != nil {
			s.log.Debug("session ended", "err", err)
		} else {
			s.log.Debug("session closed")
		}
		s.err = err
		s.cancel(sessionEnded(err))
	})
}

// endCause is why the session ended, as everything waiting on s.ctx sees
// it; ErrClosed while it still runs.
func (s *Session) endCause() error {
	if err := context.Cause(s.ctx); err != nil {
		return err
	}
	return ErrClosed
}

// sessionEnded is the cancellation cause seen by everything waiting on s.ctx.
func sessionEnded(err error) error {
	if err == nil {
		return ErrClosed
	}
	return err
}

// watchTransport ends the session when the connection goes away.
func (s *Session) watchTransport() {
	select {
	case <-s.conn.Context().Done():
		cause := context.Cause(s.conn.Context())
		if cause == nil || errors.Is(cause, context.Canceled) {
			cause = ErrClosed
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

func (s *Session) handleBidi(cs *controlStream) {
	typ, err := cs.r.ReadVarint()
	if err != nil {
		cs.reset(ErrCancel)
		return
	}
	kind := lite.ControlType(typ)
	if !kind.Valid(s.version) {
		// Unknown stream types are refused one by one so peers can probe for
		// extensions; they do not end the session.
		s.log.Debug("refusing unknown control stream", "type", typ)
		cs.reset(ErrUnexpectedStream)
		return
	}
	switch kind {
	case lite.ControlAnnounce:
		s.serveAnnounce(cs)
	case lite.ControlSubscribe:
		s.serveSubscribe(cs)
	case lite.ControlFetch:
		s.serveFetch(cs)
	case lite.ControlProbe:
		s.serveProbe(cs)
	case lite.ControlGoaway:
		s.recvGoaway(cs)
	default:
		// The session stream is the one that carried SETUP.
		s.fail(fmt.Errorf("%w: a second session stream", ErrProtocolViolation))
	}
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
	stop := context.AfterFunc(s.ctx, func() { cs.reset(ErrCancel) })
	defer stop()
	for {
		body, err := cs.r.ReadMessage(maxControlMessage)
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.end(nil)
			} else if s.ctx.Err() == nil {
				s.end(streamError(err))
			}
			return
		}
		var info lite.SessionInfo
		if err := info.DecodeBody(body, s.version); err != nil {
			s.fail(decodeError("SESSION_INFO", err))
			return
		}
		s.est.update(info.Bitrate, 0)
	}
}

// decodeError reports a malformed message from the peer.
func decodeError(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrDecode, what, err)
}
