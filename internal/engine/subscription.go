package engine

import (
	"context"
	"io"
	"sync"

	"github.com/moqgo/moq"
)

// maxDrops bounds the drops a Subscription keeps for NextDrop; older ones
// are discarded.
const maxDrops = 1024

// Subscription is a subscription to one track of the peer with explicit
// delivery options. The engine that runs it reports the publisher's answers
// (SetInfo, AddDrop) and its end (Finish); the application reads them and
// may Update or Close it.
type Subscription struct {
	consumer *moq.TrackConsumer
	done     chan struct{} // closed when the subscription ended

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced when drops arrive
	infoChanged chan struct{} // closed and replaced when the publisher answers
	info        SubscribeOptions
	drops       []GroupDrop
	dropped     int // drops discarded from the front of drops
	next        int // index of the next drop NextDrop returns
	err         error
	closed      bool // Close was called
	cancel      context.CancelCauseFunc
	update      func(context.Context, SubscribeOptions) error
}

// NewSubscription returns a subscription whose groups arrive in consumer,
// which Close releases; nil when the groups go into a track of the caller's.
func NewSubscription(consumer *moq.TrackConsumer) *Subscription {
	return &Subscription{consumer: consumer, done: make(chan struct{}),
		changed: make(chan struct{}), infoChanged: make(chan struct{})}
}

// Attach gives the subscription the means to cancel it and to send updates,
// once its request runs. A Close that came first cancels it at once.
func (sub *Subscription) Attach(cancel context.CancelCauseFunc, update func(context.Context, SubscribeOptions) error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.cancel, sub.update = cancel, update
	if sub.closed {
		cancel(moq.ErrCancel)
	}
}

// SetInfo records the publisher's latest description of the subscription.
func (sub *Subscription) SetInfo(info SubscribeOptions) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.info = info
	close(sub.infoChanged)
	sub.infoChanged = make(chan struct{})
}

// AddDrop records groups the publisher will not deliver.
func (sub *Subscription) AddDrop(d GroupDrop) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.drops = append(sub.drops, d)
	if len(sub.drops) > maxDrops {
		sub.drops = sub.drops[1:]
		sub.dropped++
	}
	close(sub.changed)
	sub.changed = make(chan struct{})
}

// Finish records the end of the subscription: nil when the publisher ended
// it cleanly.
func (sub *Subscription) Finish(err error) {
	sub.mu.Lock()
	sub.err = err
	sub.mu.Unlock()
	close(sub.done)
}

// Track returns the subscription's track. It stays valid until Close; Clone
// it to read from several goroutines or beyond Close.
func (sub *Subscription) Track() *moq.TrackConsumer { return sub.consumer }

// Info returns the publisher's latest description of the subscription; the
// fields a version does not carry are zero.
func (sub *Subscription) Info() SubscribeOptions {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.info
}

// InfoChanged returns a channel closed when the publisher next describes the
// subscription, such as in answer to an Update.
func (sub *Subscription) InfoChanged() <-chan struct{} {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.infoChanged
}

// Update changes the subscription's options (all of them: send the whole
// set). Options the version cannot carry are refused with
// moq.ErrUnsupported. It waits only while the transport's flow control holds
// the request; if ctx ends meanwhile, the subscription is cancelled, since a
// partly sent update cannot be taken back.
func (sub *Subscription) Update(ctx context.Context, opts SubscribeOptions) error {
	select {
	case <-sub.done:
		return moq.ErrClosed
	default:
	}
	sub.mu.Lock()
	update := sub.update
	sub.mu.Unlock()
	if update == nil {
		return moq.ErrClosed
	}
	return update(ctx, opts)
}

// NextDrop waits for the next report of dropped groups. Once the
// subscription ended and every report was returned, it returns io.EOF, or
// the error that ended the subscription.
func (sub *Subscription) NextDrop(ctx context.Context) (GroupDrop, error) {
	for {
		sub.mu.Lock()
		if i := sub.next - sub.dropped; i < len(sub.drops) {
			d := sub.drops[max(i, 0)]
			sub.next = sub.dropped + max(i, 0) + 1
			sub.mu.Unlock()
			return d, nil
		}
		changed := sub.changed
		sub.mu.Unlock()
		select {
		case <-changed:
		case <-sub.done:
			sub.mu.Lock()
			pending := sub.next-sub.dropped < len(sub.drops)
			err := sub.err
			sub.mu.Unlock()
			if pending {
				continue
			}
			if err == nil {
				err = io.EOF
			}
			return GroupDrop{}, err
		case <-ctx.Done():
			return GroupDrop{}, ctx.Err()
		}
	}
}

// Done is closed once the subscription ended.
func (sub *Subscription) Done() <-chan struct{} { return sub.done }

// Err returns why the subscription ended: nil while it runs and after the
// publisher ended it cleanly.
func (sub *Subscription) Err() error {
	select {
	case <-sub.done:
	default:
		return nil
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

// Close cancels the subscription and releases its track. It is idempotent.
func (sub *Subscription) Close() {
	if sub.consumer != nil {
		sub.consumer.Close()
	}
	sub.mu.Lock()
	cancel := sub.cancel
	sub.closed = true
	sub.mu.Unlock()
	if cancel != nil {
		cancel(moq.ErrCancel)
	}
}
