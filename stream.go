package moq

import (
	"errors"
	"fmt"
	"io"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// controlStream is a bidirectional stream carrying size-prefixed messages.
type controlStream struct {
	st  transport.Stream
	r   *wire.Reader
	buf []byte // reused encoding buffer; callers serialise writes
}

// newControlStream wraps a control stream and gives it the most urgent send
// priority.
func newControlStream(st transport.Stream) *controlStream {
	st.SetPriority(controlUrgency)
	return &controlStream{st: st, r: wire.NewReader(st)}
}

// openControl opens a control stream of the given type.
func (s *Session) openControl(kind lite.ControlType) (*controlStream, error) {
	st, err := s.conn.OpenStream(s.ctx)
	if err != nil {
		return nil, err
	}
	cs := newControlStream(st)
	cs.buf = wire.AppendVarint(cs.buf[:0], uint64(kind))
	return cs, nil
}

// write sends msg (size-prefixed), after anything already staged in buf.
func (cs *controlStream) write(msg lite.Message, v lite.Version) error {
	b, err := lite.AppendMessage(cs.buf, msg, v)
	if err != nil {
		return err
	}
	return cs.flush(b)
}

// flush writes b and keeps its storage for the next message.
func (cs *controlStream) flush(b []byte) error {
	_, err := cs.st.Write(b)
	cs.buf = b[:0]
	return err
}

// readMessage reads one size-prefixed message into m.
func (cs *controlStream) readMessage(m lite.Message, v lite.Version, what string) error {
	body, err := cs.r.ReadMessage(maxControlMessage)
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
	cs.st.CancelRead(ErrorCode(ErrCancel))
}

// reset abandons both directions with err's code.
func (cs *controlStream) reset(err error) {
	code := ErrorCode(err)
	cs.st.CancelWrite(code)
	cs.st.CancelRead(code)
}

// errPeerClosed is how a stream fails when the peer closed the whole session
// cleanly: what it was carrying ends cleanly too.
var errPeerClosed = fmt.Errorf("%w by peer", ErrClosed)

// streamResetError is a stream the peer reset with the error it carries.
type streamResetError struct{ err error }

func (e *streamResetError) Error() string { return "moq: stream reset by peer: " + e.err.Error() }
func (e *streamResetError) Unwrap() error { return e.err }

// streamError turns a transport read/write failure into a moq error: a reset
// by the peer carries the peer's error code.
func streamError(err error) error {
	var se *transport.StreamError
	if errors.As(err, &se) && se.Remote {
		return &streamResetError{ErrorFromCode(se.Code)}
	}
	var sess *transport.SessionError
	if errors.As(err, &sess) {
		switch {
		case !sess.Remote:
			return ErrClosed
		case sess.Code == 0:
			return errPeerClosed
		default:
			return fmt.Errorf("moq: session closed by peer: %w", ErrorFromCode(sess.Code))
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: stream ended mid-message", ErrDecode)
	}
	if errors.Is(err, wire.ErrTooLarge) {
		return fmt.Errorf("%w: %v", ErrBoundsExceeded, err)
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
