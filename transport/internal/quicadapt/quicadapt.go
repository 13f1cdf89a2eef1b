// Package quicadapt adapts sessions with quic-go's stream API to the stream
// methods and stream interfaces of package transport. quic-go's *Conn has
// that API, and webtransport-go's *Session mirrors it with its own stream
// types and 32-bit error codes.
//
// transport/quic and transport/webtransport describe what differs in a
// [Library] and embed the [Streams] that [NewStreams] returns in their
// sessions.
package quicadapt

import (
	"context"
	"time"

	"github.com/moqgo/moq/transport"
)

// Code is a library's stream error code type: 62-bit codes in quic-go
// (uint64), 32-bit ones in webtransport-go.
type Code interface{ ~uint32 | ~uint64 }

// SendStream is the sending half of a library stream, implemented by its
// bidirectional and send-only streams.
type SendStream[C Code] interface {
	Write(p []byte) (int, error)
	Close() error
	CancelWrite(code C)
	SetWriteDeadline(t time.Time) error
	Context() context.Context
}

// ReceiveStream is the receiving half of a library stream, implemented by
// its bidirectional and receive-only streams.
type ReceiveStream[C Code] interface {
	Read(p []byte) (int, error)
	CancelRead(code C)
	SetReadDeadline(t time.Time) error
}

// Stream is a library's bidirectional stream.
type Stream[C Code] interface {
	SendStream[C]
	ReceiveStream[C]
}

// Conn is the stream API of a library session whose bidirectional,
// send-only and receive-only streams have the types B, S and R.
type Conn[B, S, R any] interface {
	OpenStreamSync(ctx context.Context) (B, error)
	OpenUniStreamSync(ctx context.Context) (S, error)
	AcceptStream(ctx context.Context) (B, error)
	AcceptUniStream(ctx context.Context) (R, error)
}

// Library holds what differs between the adapted libraries, for their
// bidirectional streams B and send-only streams S.
type Library[B Stream[C], S SendStream[C], C Code] struct {
	// MapError translates the library's errors into the transport error
	// types: those of Open, Accept and Close calls, and those of Read and
	// Write calls when there is no Canceller.
	MapError func(error) error
	// SetPriority and SetUniPriority implement
	// [transport.SendStream.SetPriority] for B and S; when nil, SetPriority
	// does nothing.
	SetPriority    func(str B, urgency int)
	SetUniPriority func(str S, urgency int)
	// NewCanceller, if not nil, returns the Canceller of one side of a new
	// stream. Without one, CancelRead and CancelWrite call the library
	// stream's.
	NewCanceller func() Canceller[C]
}

// A Canceller cancels one side of a stream, for libraries whose own
// CancelRead or CancelWrite needs help, and maps the errors of that side's
// Read or Write calls.
type Canceller[C Code] interface {
	// Cancel cancels the side with code. cancel is the library stream's
	// CancelRead or CancelWrite, setDeadline its SetReadDeadline or
	// SetWriteDeadline.
	Cancel(code uint32, cancel func(C), setDeadline func(time.Time) error)
	// MapError translates an error of a Read or Write on the side.
	MapError(err error) error
}

func (l *Library[B, S, C]) canceller() Canceller[C] {
	if l.NewCanceller == nil {
		return nil
	}
	return l.NewCanceller()
}

// Streams holds the stream methods of [transport.Session].
type Streams interface {
	OpenStream(ctx context.Context) (transport.Stream, error)
	OpenUniStream(ctx context.Context) (transport.SendStream, error)
	AcceptStream(ctx context.Context) (transport.Stream, error)
	AcceptUniStream(ctx context.Context) (transport.ReceiveStream, error)
}

// NewStreams opens and accepts the streams of conn and adapts them as lib
// describes.
func NewStreams[B Stream[C], S SendStream[C], R ReceiveStream[C], C Code](conn Conn[B, S, R], lib *Library[B, S, C]) Streams {
	return &streams[B, S, R, C]{conn: conn, lib: lib}
}

type streams[B Stream[C], S SendStream[C], R ReceiveStream[C], C Code] struct {
	conn Conn[B, S, R]
	lib  *Library[B, S, C]
}

func (s *streams[B, S, R, C]) OpenStream(ctx context.Context) (transport.Stream, error) {
	str, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, s.lib.MapError(err)
	}
	return s.stream(str), nil
}

func (s *streams[B, S, R, C]) OpenUniStream(ctx context.Context) (transport.SendStream, error) {
	str, err := s.conn.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, s.lib.MapError(err)
	}
	return &sender[S, C]{str: str, mapError: s.lib.MapError, setPriority: s.lib.SetUniPriority, cancel: s.lib.canceller()}, nil
}

func (s *streams[B, S, R, C]) AcceptStream(ctx context.Context) (transport.Stream, error) {
	str, err := s.conn.AcceptStream(ctx)
	if err != nil {
		return nil, s.lib.MapError(err)
	}
	return s.stream(str), nil
}

func (s *streams[B, S, R, C]) AcceptUniStream(ctx context.Context) (transport.ReceiveStream, error) {
	str, err := s.conn.AcceptUniStream(ctx)
	if err != nil {
		return nil, s.lib.MapError(err)
	}
	return &receiver[R, C]{str: str, mapError: s.lib.MapError, cancel: s.lib.canceller()}, nil
}

func (s *streams[B, S, R, C]) stream(str B) *stream[B, C] {
	return &stream[B, C]{
		sender:   sender[B, C]{str: str, mapError: s.lib.MapError, setPriority: s.lib.SetPriority, cancel: s.lib.canceller()},
		receiver: receiver[B, C]{str: str, mapError: s.lib.MapError, cancel: s.lib.canceller()},
	}
}

// stream adapts a bidirectional stream: its two halves share str.
type stream[B Stream[C], C Code] struct {
	sender[B, C]
	receiver[B, C]
}

// sender adapts a send-only stream or the sending half of a bidirectional
// one.
type sender[S SendStream[C], C Code] struct {
	str         S
	mapError    func(error) error
	setPriority func(S, int) // nil: no priorities
	cancel      Canceller[C] // nil: the library's CancelWrite
}

func (s *sender[S, C]) Write(p []byte) (int, error) {
	n, err := s.str.Write(p)
	if s.cancel != nil {
		return n, s.cancel.MapError(err)
	}
	return n, s.mapError(err)
}

func (s *sender[S, C]) Close() error { return s.mapError(s.str.Close()) }

func (s *sender[S, C]) CancelWrite(code uint32) {
	if s.cancel != nil {
		s.cancel.Cancel(code, s.str.CancelWrite, s.str.SetWriteDeadline)
		return
	}
	s.str.CancelWrite(C(code))
}

func (s *sender[S, C]) SetPriority(urgency int) {
	if s.setPriority != nil {
		s.setPriority(s.str, urgency)
	}
}

func (s *sender[S, C]) Context() context.Context { return s.str.Context() }

// receiver adapts a receive-only stream or the receiving half of a
// bidirectional one.
type receiver[R ReceiveStream[C], C Code] struct {
	str      R
	mapError func(error) error
	cancel   Canceller[C] // nil: the library's CancelRead
}

func (r *receiver[R, C]) Read(p []byte) (int, error) {
	n, err := r.str.Read(p)
	if r.cancel != nil {
		return n, r.cancel.MapError(err)
	}
	return n, r.mapError(err)
}

func (r *receiver[R, C]) CancelRead(code uint32) {
	if r.cancel != nil {
		r.cancel.Cancel(code, r.str.CancelRead, r.str.SetReadDeadline)
		return
	}
	r.str.CancelRead(C(code))
}
