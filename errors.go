package moq

import (
	"errors"
	"strconv"
)

// The errors of the model and of the sessions that carry it. They are plain
// sentinels, compared with errors.Is: each protocol engine maps them to and
// from its own wire codes, so an error the peer sent matches the sentinel of
// the same meaning.
var (
	// ErrCancel: the operation was cancelled, for example a subscription
	// its subscriber no longer wants. It is the default abort reason.
	ErrCancel = errors.New("moq: cancelled")
	// ErrDropped: every producer of a frame, group, track or broadcast went
	// away before finishing it.
	ErrDropped = errors.New("moq: dropped")
	// ErrClosed: the handle, track, session or queue is closed.
	ErrClosed = errors.New("moq: closed")
	// ErrNotFound: no such broadcast, track or group.
	ErrNotFound = errors.New("moq: not found")
	// ErrDuplicate: the name or sequence is taken.
	ErrDuplicate = errors.New("moq: duplicate")
	// ErrUnauthorized: the path is outside what the scope allows.
	ErrUnauthorized = errors.New("moq: unauthorized")
	// ErrWrongSize: a frame's payload did not match its announced size.
	ErrWrongSize = errors.New("moq: wrong frame size")
	// ErrBoundsExceeded: a sequence, size or count beyond its limit.
	ErrBoundsExceeded = errors.New("moq: bounds exceeded")
	// ErrCacheFull: a frame was evicted from its group's cache before it
	// was read.
	ErrCacheFull = errors.New("moq: cache full")
	// ErrOld: a group fell further behind the newest than the
	// subscription's max latency allows.
	ErrOld = errors.New("moq: old")

	// ErrTimeout: the peer did not answer in time.
	ErrTimeout = errors.New("moq: timeout")
	// ErrTransport: the connection failed underneath the session.
	ErrTransport = errors.New("moq: transport")
	// ErrDecode: the peer sent bytes that do not parse.
	ErrDecode = errors.New("moq: decode")
	// ErrProtocolViolation: the peer broke a rule of the protocol.
	ErrProtocolViolation = errors.New("moq: protocol violation")
	// ErrUnexpectedStream: the peer opened a stream of an unknown or
	// forbidden type.
	ErrUnexpectedStream = errors.New("moq: unexpected stream")
	// ErrUnexpectedMessage: the peer sent a message out of place.
	ErrUnexpectedMessage = errors.New("moq: unexpected message")
	// ErrVersion: no common protocol version, or a version this package
	// does not speak.
	ErrVersion = errors.New("moq: unsupported version")
	// ErrUnsupported: the negotiated version cannot express the request.
	ErrUnsupported = errors.New("moq: unsupported")
	// ErrRequiredExtension: the peer lacks an extension this side needs.
	ErrRequiredExtension = errors.New("moq: required extension missing")
)

// AppError is an error code defined by the application, for example to abort
// a track with a reason its subscribers understand. Engines carry it in their
// protocol's application code range; errors.Is matches equal codes.
type AppError uint16

// Error implements the error interface.
func (e AppError) Error() string { return "moq: application error " + strconv.Itoa(int(e)) }
