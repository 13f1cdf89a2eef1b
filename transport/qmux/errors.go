package qmux

import (
	"errors"
	"fmt"
)

// TransportErrorCode is a QUIC transport error code (RFC 9000 §20.1), carried by
// CONNECTION_CLOSE (0x1c) when the QMux layer itself closes a session. Each code is
// also an error value, so errors.Is(err, FlowControlError) identifies the cause.
type TransportErrorCode uint64

// Transport error codes used by this package.
const (
	NoError                 TransportErrorCode = 0x0
	InternalError           TransportErrorCode = 0x1
	FlowControlError        TransportErrorCode = 0x3
	StreamLimitError        TransportErrorCode = 0x4
	StreamStateError        TransportErrorCode = 0x5
	FinalSizeError          TransportErrorCode = 0x6
	FrameEncodingError      TransportErrorCode = 0x7
	TransportParameterError TransportErrorCode = 0x8
	ProtocolViolation       TransportErrorCode = 0xa
)

func (c TransportErrorCode) Error() string {
	switch c {
	case NoError:
		return "qmux: no error"
	case InternalError:
		return "qmux: internal error"
	case FlowControlError:
		return "qmux: flow control error"
	case StreamLimitError:
		return "qmux: stream limit error"
	case StreamStateError:
		return "qmux: stream state error"
	case FinalSizeError:
		return "qmux: final size error"
	case FrameEncodingError:
		return "qmux: frame encoding error"
	case TransportParameterError:
		return "qmux: transport parameter error"
	case ProtocolViolation:
		return "qmux: protocol violation"
	default:
		return fmt.Sprintf("qmux: transport error 0x%x", uint64(c))
	}
}

// TransportError ends a session because of a QMux-level failure rather than an
// application decision: a malformed frame, a flow-control or stream-limit
// violation. Remote is set when the peer reported it in a CONNECTION_CLOSE (0x1c).
// It unwraps to its Code.
type TransportError struct {
	Code   TransportErrorCode
	Reason string
	Remote bool
}

func (e *TransportError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	if e.Reason == "" {
		return fmt.Sprintf("%v (%s)", e.Code, who)
	}
	return fmt.Sprintf("%v (%s): %s", e.Code, who, e.Reason)
}

// Unwrap returns the error code, so errors.Is matches the TransportErrorCode values.
func (e *TransportError) Unwrap() error { return e.Code }

var (
	// ErrConnectionLost is the cause of a session whose WebSocket ended without a
	// close frame from the peer, or failed while reading or writing.
	ErrConnectionLost = errors.New("qmux: websocket connection lost")
	// ErrIdleTimeout is the cause of a session that received nothing from its
	// peer (no frame, no WebSocket ping or pong) for its idle timeout. The cause
	// wraps it: test with errors.Is.
	ErrIdleTimeout = errors.New("qmux: idle timeout")
	// ErrStreamClosed is returned by Write after Close.
	ErrStreamClosed = errors.New("qmux: write on closed stream")
	// ErrUnsupportedFrame is returned when encoding a frame the framing cannot carry
	// (flow-control frames in the legacy "webtransport" framing).
	ErrUnsupportedFrame = errors.New("qmux: frame not supported by this framing")
)
