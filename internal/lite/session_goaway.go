package lite

import (
	"context"
	"fmt"
	"sync"

	"github.com/moqgo/moq"
)

// goaway records a GOAWAY received from the peer.
type goaway struct {
	once     sync.Once
	received chan struct{} // closed once a GOAWAY arrived
	uri      string        // set before received is closed
}

// GoAway asks the peer to move to another session at uri ("" means the
// same URL) on a goaway stream, then waits until the peer closes this
// session or ctx is done, and closes it. The session keeps serving
// meanwhile, so a client can move its subscriptions before it leaves. It
// needs moq-lite-04; older sessions fail with moq.ErrUnsupported and stay
// open. A ctx that ends before the GOAWAY was sent fails with its error and
// leaves the session open.
func (s *Session) GoAway(ctx context.Context, uri string) error {
	if s.version < Lite04 {
		return fmt.Errorf("%w: GOAWAY needs moq-lite-04, not %s", moq.ErrUnsupported, s.version)
	}
	cs, err := s.openControl(ctx, ControlGoaway)
	if err != nil {
		return streamError(err)
	}
	if err := cs.write(ctx, &Goaway{URI: uri}, s.version); err != nil {
		cs.reset(moq.ErrCancel)
		return streamError(err)
	}
	_ = cs.st.Close()
	s.log.Debug("sent goaway", "uri", uri)
	select {
	case <-s.ctx.Done():
	case <-ctx.Done():
	}
	cs.st.CancelRead(ErrorCode(moq.ErrCancel))
	err = s.end(nil)
	s.g.Stop()
	return err
}

// recvGoaway reads the GOAWAY on a goaway stream the peer opened.
func (s *Session) recvGoaway(cs *controlStream, msg *Goaway) {
	s.log.Debug("received goaway", "uri", msg.URI)
	s.goaway.once.Do(func() {
		s.goaway.uri = msg.URI
		close(s.goaway.received)
	})
	cs.finish()
}

// GoAwayReceived is closed once the peer sent GOAWAY, asking us to move to
// GoAwayURI. The session itself keeps running until either side closes it.
func (s *Session) GoAwayReceived() <-chan struct{} { return s.goaway.received }

// GoAwayURI returns where the peer's GOAWAY asked us to reconnect: "" before
// a GOAWAY, or when it named no URI (reconnect to the same URL).
func (s *Session) GoAwayURI() string {
	select {
	case <-s.goaway.received:
		return s.goaway.uri
	default:
		return ""
	}
}
