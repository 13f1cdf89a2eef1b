// Package webtransport carries moq sessions over WebTransport (HTTP/3), the
// transport browsers use, on top of quic-go's webtransport-go.
//
// A WebTransport session owns its QUIC connection here: the client dials one
// connection per session and the server accepts one session per connection
// (webtransport-go refuses further sessions without WebTransport flow
// control). When the session ends the connection is closed too. The side
// that receives a close capsule closes the connection at once; the side that
// sent one waits briefly for that, so the capsule is not overtaken by a
// CONNECTION_CLOSE, and then closes the connection itself with the session
// code mapped into the HTTP/3 error space.
//
// CloseWithError returns once the peer has been told: when the connection is
// closed, either by the peer after the capsule arrived or by us with a
// CONNECTION_CLOSE that quic-go has handed to the socket. A process may exit
// right after it. webtransport-go only queues the capsule on the CONNECT
// stream, and quic-go sends it later from its run loop, so returning any
// earlier lets an exiting process take the capsule with it, and the peer
// learns of the end only at its idle timeout.
//
// webtransport-go streams have no send priorities, so SetPriority is a no-op.
package webtransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/transport"
	"github.com/moqgo/moq/transport/internal/quicadapt"
	quictransport "github.com/moqgo/moq/transport/quic"
)

// Bounds of the time a session closed locally waits for the peer to close
// the QUIC connection after receiving the close capsule.
const (
	minLinger = 100 * time.Millisecond
	maxLinger = time.Second
)

// closeTimeout bounds how long CloseWithError waits for the connection to
// close. It is longer than maxLinger: it only cuts short a close that got
// stuck, by closing the connection at once.
const closeTimeout = 2 * time.Second

// session adapts a webtransport-go session and owns its QUIC connection;
// the embedded Streams adapt its streams.
type session struct {
	quicadapt.Streams
	sess *wt.Session
	conn *quicgo.Conn
	ctx  context.Context
	// closed is closed once finish has closed the connection.
	closed chan struct{}
}

// wrap adapts sess on conn. onDone, if not nil, is called once the session
// has ended and the connection is closed.
func wrap(sess *wt.Session, conn *quicgo.Conn, onDone func()) *session {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &session{
		Streams: quicadapt.NewStreams(sess, &library),
		sess:    sess,
		conn:    conn,
		ctx:     ctx,
		closed:  make(chan struct{}),
	}
	context.AfterFunc(sess.Context(), func() {
		s.finish(cancel)
		close(s.closed)
		if onDone != nil {
			onDone()
		}
	})
	return s
}

// finish runs once the webtransport-go session has ended: it records the
// cause and closes the QUIC connection.
func (s *session) finish(cancel context.CancelCauseFunc) {
	// The session is closed, so AcceptUniStream returns the error that
	// closed it without dequeuing anything.
	probe, stop := context.WithCancel(context.Background())
	stop()
	_, closeErr := s.sess.AcceptUniStream(probe)

	var wtErr *wt.SessionError
	if errors.As(closeErr, &wtErr) {
		cancel(mapError(wtErr))
		if wtErr.Remote {
			s.closeConn(quicgo.ApplicationErrorCode(http3.ErrCodeNoError), "")
			return
		}
		s.linger()
		s.closeConn(quicgo.ApplicationErrorCode(codeToHTTP(uint32(wtErr.ErrorCode))), wtErr.Message)
		return
	}
	if isCleanFIN(closeErr) {
		// A CONNECT stream finished without a close capsule means code 0.
		cancel(&transport.SessionError{Remote: true})
		s.closeConn(quicgo.ApplicationErrorCode(http3.ErrCodeNoError), "")
		return
	}
	// The connection died, or the CONNECT stream failed. If the peer closed
	// the connection, its error takes precedence over our close below.
	s.closeConn(quicgo.ApplicationErrorCode(http3.ErrCodeNoError), "")
	cause := context.Cause(s.conn.Context())
	if ae, ok := errors.AsType[*quicgo.ApplicationError](cause); ok && ae.Remote {
		if se, ok := connCloseError(ae); ok {
			cancel(se)
			return
		}
	}
	if ae, ok := errors.AsType[*quicgo.ApplicationError](cause); ok && !ae.Remote &&
		ae.ErrorCode == quicgo.ApplicationErrorCode(http3.ErrCodeNoError) {
		cause = closeErr // we closed the connection above: report why
	}
	cancel(fmt.Errorf("webtransport: session ended: %w", cause))
}

// isCleanFIN reports whether err is webtransport-go's report of the peer
// finishing the CONNECT stream without a close capsule.
func isCleanFIN(err error) bool {
	var h3 *http3.Error
	return errors.As(err, &h3) && h3.ErrorCode == http3.ErrCodeDatagramError && h3.ErrorMessage == io.EOF.Error()
}

// linger waits until the peer closes the connection, for a few probe
// timeouts at most.
func (s *session) linger() {
	stats := s.conn.ConnectionStats()
	d := min(max(3*(stats.SmoothedRTT+4*stats.MeanDeviation), minLinger), maxLinger)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.conn.Context().Done():
	case <-t.C:
	}
}

// closeConn closes the QUIC connection. quic-go's CloseWithError returns
// after its run loop has written the CONNECTION_CLOSE to the socket (or
// found the connection already closed), so the peer has been told.
func (s *session) closeConn(code quicgo.ApplicationErrorCode, reason string) {
	_ = s.conn.CloseWithError(code, reason)
}

// CloseWithError sends a WT_CLOSE_SESSION capsule and returns once the QUIC
// connection is closed: by the peer after the capsule arrived, or by the
// linger's end with a CONNECTION_CLOSE carrying the code. Either way the
// peer has been told when it returns, so the process may exit. After
// closeTimeout it closes the connection itself. Context is done by then.
func (s *session) CloseWithError(code uint32, reason string) error {
	err := s.sess.CloseWithError(wt.SessionErrorCode(code), reason)
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-s.closed:
	case <-t.C:
		// The linger is bounded below closeTimeout, so something is stuck;
		// this ends a linger at once, and finish follows.
		s.closeConn(quicgo.ApplicationErrorCode(codeToHTTP(code)), reason)
		<-s.closed
	}
	return err
}

func (s *session) Context() context.Context { return s.ctx }

func (s *session) Protocol() string {
	return s.sess.SessionState().ApplicationProtocol
}

func (s *session) LocalAddr() net.Addr  { return s.sess.LocalAddr() }
func (s *session) RemoteAddr() net.Addr { return s.sess.RemoteAddr() }

// ConnectionStats implements [transport.Stats] with the statistics of the
// QUIC connection the session owns.
func (s *session) ConnectionStats() transport.ConnectionStats { return quictransport.Stats(s.conn) }

// library adapts webtransport-go's streams: errors go through mapError, each
// side of a stream gets a cancel, and there are no send priorities, so
// SetPriority does nothing.
var library = quicadapt.Library[*wt.Stream, *wt.SendStream, wt.StreamErrorCode]{
	MapError:     mapError,
	NewCanceller: func() quicadapt.Canceller[wt.StreamErrorCode] { return new(cancel) },
}

// cancel is the [quicadapt.Canceller] of one side of a stream: it makes
// CancelRead or CancelWrite release a Read or Write blocked on that side.
// webtransport-go (v0.13.0) parks a call that saw the peer's session-gone
// reset until the session closes the stream; but a stream closed locally has
// already left the session, so that call would never return. An expired
// deadline releases it, and the call then reports the local cancellation like
// any Read or Write after the cancel.
type cancel struct {
	err atomic.Pointer[transport.StreamError]
}

// expired is a deadline long past.
var expired = time.Unix(1, 0)

// Cancel records code, cancels the stream's side with it and releases a
// blocked call.
func (c *cancel) Cancel(code uint32, cancelSide func(wt.StreamErrorCode), setDeadline func(time.Time) error) {
	c.err.CompareAndSwap(nil, &transport.StreamError{Code: code})
	cancelSide(wt.StreamErrorCode(code))
	_ = setDeadline(expired)
}

// MapError maps err, reporting an expired deadline as the cancel that set it.
func (c *cancel) MapError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if se := c.err.Load(); se != nil {
			return se
		}
	}
	return mapError(err)
}

var (
	_ transport.Session = (*session)(nil)
	_ transport.Stats   = (*session)(nil)
)
