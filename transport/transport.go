// Package transport is the small stream-multiplexing interface moq sessions run on.
//
// Implementations live in sub-packages: raw QUIC (transport/quic), WebTransport over
// HTTP/3 (transport/webtransport) and QMux over WebSocket (transport/qmux). Each one
// translates its library's errors into [*StreamError] and [*SessionError] so the layers
// above can inspect codes with errors.As without knowing which transport is in use.
package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// Session is one established connection that carries bidirectional and unidirectional
// streams. All methods are safe for concurrent use.
type Session interface {
	// OpenStream opens a bidirectional stream, blocking while the peer's stream limit
	// is reached.
	OpenStream(ctx context.Context) (Stream, error)
	// OpenUniStream opens a unidirectional (send-only) stream, blocking while the
	// peer's stream limit is reached.
	OpenUniStream(ctx context.Context) (SendStream, error)
	// AcceptStream waits for the peer to open a bidirectional stream.
	AcceptStream(ctx context.Context) (Stream, error)
	// AcceptUniStream waits for the peer to open a unidirectional stream.
	AcceptUniStream(ctx context.Context) (ReceiveStream, error)

	// CloseWithError closes the session, sending code and reason to the peer.
	// Closing an already closed session is a no-op.
	CloseWithError(code uint32, reason string) error
	// Context is cancelled once the session is closed, locally or by the peer.
	// context.Cause returns a *SessionError when the session ended with a code.
	Context() context.Context

	// Protocol is the negotiated application protocol: the QUIC ALPN, the
	// WebTransport protocol or the WebSocket subprotocol suffix; "" when none was
	// negotiated.
	Protocol() string
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// Stats is implemented by sessions whose transport exposes its congestion
// controller state (raw QUIC and WebTransport). It is optional: callers check
// for it with a type assertion, and transports without it (QMux over
// WebSocket) simply lack the estimates derived from it.
type Stats interface {
	// ConnectionStats returns a snapshot of the connection's statistics.
	ConnectionStats() ConnectionStats
}

// ConnectionStats is a snapshot of a connection's round-trip times and
// congestion window. Zero durations mean no RTT sample yet.
type ConnectionStats struct {
	// SmoothedRTT is the exponentially weighted RTT estimate (RFC 9002 §5.3).
	SmoothedRTT time.Duration
	// MinRTT is the smallest RTT sample seen.
	MinRTT time.Duration
	// LatestRTT is the most recent RTT sample.
	LatestRTT time.Duration
	// CongestionWindow is the sender's congestion window in bytes.
	CongestionWindow uint64
	// BytesSent and BytesReceived count the bytes carried so far, in both
	// directions, retransmissions included.
	BytesSent, BytesReceived uint64
}

// SendStream is the sending half of a stream.
type SendStream interface {
	// Write blocks until p is buffered or the stream fails.
	io.Writer
	// Close finishes the stream (FIN) after all written data. It does not wait for
	// the peer to acknowledge the data.
	Close() error
	// CancelWrite abandons the stream (RESET_STREAM) with an application code.
	CancelWrite(code uint32)
	// SetPriority sets the send urgency, 0 (most urgent) to 7. Streams of equal
	// urgency share it: QUIC serves them round-robin, QMux in the order they
	// were opened. Transports without send priorities ignore it.
	SetPriority(urgency int)
	// Context is cancelled once the send side is closed: after Close or CancelWrite,
	// or when the peer asked us to stop sending.
	Context() context.Context
}

// ReceiveStream is the receiving half of a stream.
type ReceiveStream interface {
	// Read returns io.EOF after the peer finished the stream, and a *StreamError
	// when the peer reset it.
	io.Reader
	// CancelRead tells the peer to stop sending (STOP_SENDING) with an application code.
	CancelRead(code uint32)
}

// Stream is a bidirectional stream.
type Stream interface {
	SendStream
	ReceiveStream
}

// StreamError reports a stream reset (by the peer when Remote) with an application code.
type StreamError struct {
	Code   uint32
	Remote bool
}

func (e *StreamError) Error() string {
	if e.Remote {
		return fmt.Sprintf("stream reset by peer with code %d", e.Code)
	}
	return fmt.Sprintf("stream reset with code %d", e.Code)
}

// SessionError reports the end of a session (by the peer when Remote) with an
// application code and reason.
type SessionError struct {
	Code   uint32
	Reason string
	Remote bool
}

func (e *SessionError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	if e.Reason == "" {
		return fmt.Sprintf("session closed by %s with code %d", who, e.Code)
	}
	return fmt.Sprintf("session closed by %s with code %d: %s", who, e.Code, e.Reason)
}
