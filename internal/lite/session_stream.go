package lite

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/serve"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// controlStream is a bidirectional stream carrying size-prefixed messages.
// Writes are serialised by a one-slot semaphore rather than a mutex, so a
// writer waiting for its turn behind a peer that stopped reading can give up
// when its context ends.
type controlStream struct {
	st   transport.Stream
	r    *wire.Reader
	turn chan struct{} // holds a token while a write is under way
	buf  []byte        // reused encoding buffer, guarded by turn
}

// newControlStream wraps a control stream and gives it the most urgent send
// priority.
func newControlStream(st transport.Stream) *controlStream {
	st.SetPriority(serve.ControlUrgency)
	return &controlStream{st: st, r: wire.NewReader(st), turn: make(chan struct{}, 1)}
}

// openControl opens a control stream of the given type; the type goes out
// with the first message.
func (s *Session) openControl(ctx context.Context, kind ControlType) (*controlStream, error) {
	ctx, stop := s.bound(ctx)
	defer stop()
	st, err := s.conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	cs := newControlStream(st)
	cs.buf = wire.AppendVarint(cs.buf[:0], uint64(kind))
	return cs, nil
}

// bound returns ctx, also cancelled when the session ends.
func (s *Session) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.ctx, func() { cancel(s.endCause()) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// write sends msg (size-prefixed), after anything already staged in buf.
// If ctx ends while the write is blocked by flow control, the stream is
// reset: a partly written message cannot be taken back.
func (cs *controlStream) write(ctx context.Context, msg Message, v Version) error {
	return cs.send(ctx, func(b []byte) ([]byte, error) { return AppendMessage(b, msg, v) })
}

// lock waits for the write turn, or for ctx to end; unlock gives it back.
func (cs *controlStream) lock(ctx context.Context) error {
	select {
	case cs.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (cs *controlStream) unlock() { <-cs.turn }

// send writes what appendTo appends to the staged bytes; see write.
func (cs *controlStream) send(ctx context.Context, appendTo func([]byte) ([]byte, error)) error {
	if err := cs.lock(ctx); err != nil {
		return err
	}
	defer cs.unlock()
	b, err := appendTo(cs.buf)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { cs.reset(moq.ErrCancel) })
	_, err = cs.st.Write(b)
	cs.buf = b[:0]
	if !stop() {
		return context.Cause(ctx)
	}
	return err
}

// read reads one size-prefixed message into m: io.EOF at a clean end of the
// stream, an error wrapping moq.ErrDecode for a body that does not parse,
// and the stream's error otherwise (see streamError).
func (cs *controlStream) read(m Message, v Version, what string) error {
	return readBody(cs.r, m, v, maxControlMessage, what)
}

// readBody reads one size-prefixed message of at most maxSize bytes into m;
// see controlStream.read.
func readBody(r *wire.Reader, m Message, v Version, maxSize int, what string) error {
	body, err := r.ReadMessage(maxSize)
	if err != nil {
		return err
	}
	if err := m.DecodeBody(body, v); err != nil {
		return decodeError(what, err)
	}
	return nil
}

// finish ends our side of the stream cleanly and stops reading.
func (cs *controlStream) finish() {
	_ = cs.st.Close()
	cs.st.CancelRead(ErrorCode(moq.ErrCancel))
}

// reset abandons both directions with err's code.
func (cs *controlStream) reset(err error) {
	code := ErrorCode(err)
	cs.st.CancelWrite(code)
	cs.st.CancelRead(code)
}

// decodeError reports a malformed message from the peer.
func decodeError(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", moq.ErrDecode, what, err)
}

// streamError turns a transport read or write failure into a moq error: a
// reset by the peer carries the peer's error code.
func streamError(err error) error {
	if se, ok := errors.AsType[*transport.StreamError](err); ok && se.Remote {
		return &engine.StreamResetError{Err: ErrorFromCode(se.Code)}
	}
	if sess, ok := errors.AsType[*transport.SessionError](err); ok {
		switch {
		case !sess.Remote:
			return moq.ErrClosed
		case sess.Code == 0:
			return engine.ErrPeerClosed
		default:
			return fmt.Errorf("moq: session closed by peer: %w", ErrorFromCode(sess.Code))
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended mid-message", moq.ErrDecode)
	}
	if errors.Is(err, wire.ErrTooLarge) {
		return fmt.Errorf("%w: %v", moq.ErrBoundsExceeded, err)
	}
	return err
}

// discard reads r to its end, for streams on which the peer sends nothing
// more: it only waits for their end, with a small buffer (io.Copy would hold
// 8 KiB for every idle stream). io.EOF is a clean end and returns nil.
func discard(r io.Reader) error {
	buf := make([]byte, 64)
	for {
		if _, err := r.Read(buf); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
