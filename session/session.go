package session

import (
	"context"
	"sync"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/transport"
)

// closeTimeout bounds how long Close waits for finished tracks to flush.
const closeTimeout = 10 * time.Second

// Types shared with the protocol engines.
type (
	// SubscribeOptions are the delivery preferences of a subscription; see
	// Session.Subscribe.
	SubscribeOptions = engine.SubscribeOptions
	// Subscription is a subscription with explicit options; see
	// Session.Subscribe.
	Subscription = engine.Subscription
	// GroupDrop reports groups the publisher will not deliver.
	GroupDrop = engine.GroupDrop
	// Estimate is a bandwidth estimate the peer reported.
	Estimate = engine.Estimate
	// Limits bound what a peer can make a session hold; see Config.Limits.
	Limits = engine.Limits
	// Stats counts what sessions do; see Config.Stats.
	Stats = engine.Stats
)

// Session is an established session over one transport connection, run by
// the engine of its version. It runs until Close, Shutdown, CloseWithError,
// or the peer or the connection ends it.
type Session struct {
	conn    transport.Session
	version Version
	e       engine.Session
}

// Version returns the negotiated protocol version.
func (s *Session) Version() Version { return s.version }

// Protocol returns the transport's negotiated application protocol, "" if
// none.
func (s *Session) Protocol() string { return s.conn.Protocol() }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.e.Done() }

// Err returns why the session ended: nil while it runs and after a clean
// close (code 0) by either side, otherwise the error.
func (s *Session) Err() error { return s.e.Err() }

// Wait blocks until the session ends or ctx is done, and returns Err.
func (s *Session) Wait(ctx context.Context) error {
	select {
	case <-s.e.Done():
		return s.e.Err()
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
// groups until ctx is done, so a publisher can Finish its tracks and shut
// down without cutting off their end. Other subscriptions end at once.
// Shutdown waits for the session's goroutines to exit. It returns an error
// when ctx ended before the finished tracks were delivered, or when closing
// the connection failed.
func (s *Session) Shutdown(ctx context.Context) error { return s.e.Shutdown(ctx) }

// CloseWithError ends the session at once, sending err's code to the peer
// (moq.ErrCancel's when nil).
func (s *Session) CloseWithError(err error) error { return s.e.CloseWithError(err) }

// ConsumeBroadcast returns the peer's broadcast at path, announced or not:
// its tracks are subscribed from the peer on demand, and a track the peer
// does not have fails with moq.ErrNotFound. It holds no goroutine while no
// track is subscribed; Close it when done (the session's end ends it too).
func (s *Session) ConsumeBroadcast(path moq.Path) *RemoteBroadcast {
	b, release := s.e.ConsumeBroadcast(path)
	return &RemoteBroadcast{BroadcastConsumer: b, release: release}
}

// Subscribe subscribes to a track of the peer's broadcast with explicit
// delivery options and waits for the publisher's answer (ctx bounds that
// wait). Unlike ConsumeBroadcast, the subscription is not shared with other
// consumers of the track: it has its own options, updates and drops. Every
// field of opts but Priority needs moq-lite-03 or later: older sessions
// refuse them with moq.ErrUnsupported. Close it when done.
func (s *Session) Subscribe(ctx context.Context, broadcast moq.Path, track string, opts SubscribeOptions) (*Subscription, error) {
	return s.e.Subscribe(ctx, broadcast, track, opts)
}

// Fetch asks the peer for one group of a track, by sequence, from its cache
// (or its upstream's, through relays), at the given priority. It returns
// once the group's first frame or its end arrived, or fails: moq.ErrNotFound
// when the peer does not have it. ctx bounds the whole transfer, waiting
// for stream credit included: when it is done, the fetch is abandoned and
// the group aborted. moq-lite-03 and later; older sessions fail with
// moq.ErrUnsupported.
func (s *Session) Fetch(ctx context.Context, broadcast moq.Path, track string, sequence uint64, priority uint8) (*moq.GroupConsumer, error) {
	return s.e.Fetch(ctx, broadcast, track, sequence, priority)
}

// GoAway asks the peer to move to another session at uri ("" means the
// same URL), then waits until the peer closes this session or ctx is done,
// and closes it. The session keeps serving meanwhile, so a client can move
// its subscriptions before it leaves (see Client). It needs moq-lite-04;
// older sessions fail with moq.ErrUnsupported and stay open.
func (s *Session) GoAway(ctx context.Context, uri string) error { return s.e.GoAway(ctx, uri) }

// GoAwayReceived is closed once the peer sent GOAWAY, asking us to move to
// GoAwayURI. The session itself keeps running until either side closes it.
func (s *Session) GoAwayReceived() <-chan struct{} { return s.e.GoAwayReceived() }

// GoAwayURI returns where the peer's GOAWAY asked us to reconnect: "" before
// a GOAWAY, or when it named no URI (reconnect to the same URL).
func (s *Session) GoAwayURI() string { return s.e.GoAwayURI() }

// EstimatedSendRate returns the session's estimated send rate in bits per
// second: the congestion window per smoothed RTT, an upper bound on what
// the path carries. It is 0 when unknown: before the first RTT sample, or on
// transports that expose no congestion state (QMux over WebSocket).
func (s *Session) EstimatedSendRate() uint64 { return s.e.EstimatedSendRate() }

// RTT returns the smoothed round-trip time of the connection, 0 when the
// transport does not expose it.
func (s *Session) RTT() time.Duration { return s.e.RTT() }

// RecvEstimate returns the latest bandwidth estimate the peer reported.
// From moq-lite-03 on, the first call of RecvEstimate or WaitRecvEstimate
// asks the peer for estimates: sessions do not probe unless the application
// wants the estimates, as the reference peers do.
func (s *Session) RecvEstimate() Estimate { return s.e.RecvEstimate() }

// WaitRecvEstimate waits until the peer reported more than after estimates
// (compare Estimate.Updates) and returns the latest. It fails when ctx is
// done or the session ends.
func (s *Session) WaitRecvEstimate(ctx context.Context, after uint64) (Estimate, error) {
	return s.e.WaitRecvEstimate(ctx, after)
}

// RemoteBroadcast is a broadcast of the peer consumed through a session or a
// Client: a moq.BroadcastConsumer whose tracks come from the peer, with a
// Close that stops serving it. Closing it aborts it with moq.ErrClosed for
// whoever still consumes it.
type RemoteBroadcast struct {
	*moq.BroadcastConsumer
	once    sync.Once
	release func()
}

// Close releases the broadcast. It is idempotent.
func (b *RemoteBroadcast) Close() { b.once.Do(b.release) }
