// Package engine is the contract between the public session package and the
// protocol engines (internal/lite, and internal/ietf beside it), and the
// protocol-neutral pieces every engine shares on the subscriber side: the
// subscription handle and its bookkeeping, the peer's bandwidth estimates,
// broadcasts mirrored from the peer, and goroutine ownership. The serving
// side's shared machinery is in internal/serve.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/moqgo/moq"
)

// Config is what an engine needs to run a session.
type Config struct {
	// Publish is offered to the peer; nil publishes nothing.
	Publish *moq.OriginConsumer
	// Consume receives the peer's announced broadcasts; nil consumes nothing.
	Consume *moq.OriginProducer
	// Logger receives session events; never nil.
	Logger *slog.Logger
	// NodeID is this endpoint's id in announcement hop lists; 0 for none.
	NodeID uint64
	// Limits bound what the peer can make the session hold.
	Limits Limits
	// Cache is the cache policy of the tracks mirrored from the peer.
	Cache moq.CachePolicy
	// Stats, when set, counts what the session does.
	Stats *Stats
}

// Session is one running session of a protocol engine. The session package
// wraps it; see session.Session for what each method means.
type Session interface {
	Done() <-chan struct{}
	Err() error
	Shutdown(ctx context.Context) error
	CloseWithError(err error) error

	// ConsumeBroadcast mirrors the peer's broadcast at path; release stops
	// serving it.
	ConsumeBroadcast(path moq.Path) (b *moq.BroadcastConsumer, release func())
	Subscribe(ctx context.Context, broadcast moq.Path, track string, opts SubscribeOptions) (*Subscription, error)
	// Feed subscribes into an existing track, leaving it neither finished
	// nor aborted at the end; result gets the error that ended the
	// subscription (nil when the publisher finished it, ErrPeerClosed when
	// the session ended cleanly first).
	Feed(ctx context.Context, broadcast moq.Path, track *moq.TrackProducer, opts SubscribeOptions) (sub *Subscription, result <-chan error, err error)
	Fetch(ctx context.Context, broadcast moq.Path, track string, sequence uint64, priority uint8) (*moq.GroupConsumer, error)
	// CanStartAt reports whether subscriptions can name their start group,
	// which a subscription moved to another session needs to resume.
	CanStartAt() bool
	// WaitSubscriptions waits until no subscription is left, ctx is done or
	// the session ends.
	WaitSubscriptions(ctx context.Context)

	GoAway(ctx context.Context, uri string) error
	GoAwayReceived() <-chan struct{}
	GoAwayURI() string

	EstimatedSendRate() uint64
	RTT() time.Duration
	RecvEstimate() Estimate
	WaitRecvEstimate(ctx context.Context, after uint64) (Estimate, error)
}

// SubscribeOptions are the delivery preferences of a subscription, and the
// publisher's answer in Subscription.Info. Versions that cannot carry a
// field refuse it with moq.ErrUnsupported.
type SubscribeOptions struct {
	// Priority ranks the track against the session's other tracks; higher
	// is sent first.
	Priority uint8
	// Ordered asks for older groups first instead of newest first.
	Ordered bool
	// MaxLatency, when not zero, drops groups that fall that far behind the
	// newest group: the publisher skips them or resets them mid-way and
	// reports them with a GroupDrop (moq.ErrOld).
	MaxLatency time.Duration
	// Start is the first group wanted; nil starts at the newest group.
	Start *uint64
	// End is the last group wanted; the subscription ends cleanly once
	// every group up to it was delivered or reported dropped. nil means no
	// end.
	End *uint64
}

// GroupDrop reports groups the publisher will not deliver.
type GroupDrop struct {
	// Start and End are the first and last dropped sequences.
	Start, End uint64
	// Err says why: nil when the groups are simply unavailable, moq.ErrOld
	// when they exceeded the subscription's max latency, otherwise the
	// error of the publisher's code.
	Err error
}

// ErrPeerClosed is how what a stream carried ends when the peer closed the
// whole session cleanly: that ends it cleanly too.
var ErrPeerClosed = fmt.Errorf("%w by peer", moq.ErrClosed)

// StreamResetError is a stream the peer reset, with the error its code
// means. It tells a failure of one request apart from the end of the session.
type StreamResetError struct{ Err error }

func (e *StreamResetError) Error() string { return "moq: stream reset by peer: " + e.Err.Error() }

// Unwrap returns the error the peer's code means.
func (e *StreamResetError) Unwrap() error { return e.Err }

// IsStreamReset reports whether err is a stream the peer reset.
func IsStreamReset(err error) bool {
	_, ok := errors.AsType[*StreamResetError](err)
	return ok
}
