package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/moqgo/moq/internal/lite"
)

// SubscribeOptions are the delivery preferences of a subscription, and the
// publisher's answer in Subscription.Info. Every field but Priority needs
// moq-lite-03 or later: older sessions refuse them with ErrUnsupported.
type SubscribeOptions struct {
	// Priority ranks the track against the session's other tracks; higher
	// is sent first.
	Priority uint8
	// Ordered asks for older groups first instead of newest first.
	Ordered bool
	// MaxLatency, when not zero, drops groups that fall that far behind the
	// newest group: the publisher skips them or resets them mid-way and
	// reports them with a GroupDrop (ErrOld).
	MaxLatency time.Duration
	// Start is the first group wanted; nil starts at the newest group.
	Start *uint64
	// End is the last group wanted; the subscription ends cleanly once
	// every group up to it was delivered or reported dropped. nil means no
	// end.
	End *uint64
}

// check refuses the options version v cannot carry.
func (o SubscribeOptions) check(v lite.Version) error {
	if v >= lite.Lite03 {
		return nil
	}
	if o.Ordered || o.MaxLatency != 0 || o.Start != nil || o.End != nil {
		return fmt.Errorf("%w: group order, max latency, start and end groups need moq-lite-03 or later, not %s", ErrUnsupported, v)
	}
	return nil
}

func optGroup(seq *uint64) lite.OptGroup {
	if seq == nil {
		return lite.OptGroup{}
	}
	return lite.OptGroup{Seq: *seq, Valid: true}
}

func groupPtr(g lite.OptGroup) *uint64 {
	if !g.Valid {
		return nil
	}
	seq := g.Seq
	return &seq
}

// GroupDrop reports groups the publisher will not deliver.
type GroupDrop struct {
	// Start and End are the first and last dropped sequences.
	Start, End uint64
	// Err says why: nil when the groups are simply unavailable, ErrOld when
	// they exceeded the subscription's max latency, otherwise the error of
	// the publisher's code.
	Err error
}

// maxDrops bounds the drops a Subscription keeps for NextDrop; older ones
// are discarded.
const maxDrops = 1024

// Subscription is a subscription to one track of the peer, with explicit
// delivery options (see Session.Subscribe). Its groups arrive in Track.
type Subscription struct {
	sess     *Session
	consumer *TrackConsumer
	done     chan struct{} // closed when the subscription ended

	wmu    sync.Mutex // serialises writes on cs
	cs     *controlStream
	cancel context.CancelCauseFunc

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced when drops arrive
	infoChanged chan struct{} // closed and replaced when a SUBSCRIBE_OK arrives
	info        SubscribeOptions
	drops       []GroupDrop
	dropped     int // drops discarded from the front of drops
	next        int // index of the next drop NextDrop returns
	err         error
	closed      bool // Close was called
}

// Subscribe subscribes to a track of the peer's broadcast with explicit
// delivery options and waits for the publisher's SUBSCRIBE_OK (ctx bounds
// that wait). Unlike ConsumeBroadcast, the subscription is not shared with
// other consumers of the track: it has its own options, updates and drops.
// Close it when done.
func (s *Session) Subscribe(ctx context.Context, broadcast Path, track string, opts SubscribeOptions) (*Subscription, error) {
	if err := opts.check(s.version); err != nil {
		return nil, err
	}
	producer := NewTrack(Track{Name: track, Priority: opts.Priority})
	sub := newSubscriptionHandle(s, producer.Consume())
	ready := make(chan error, 1)
	run := func() {
		defer producer.Close()
		err := s.remoteEnd(s.subscribe(s.ctx, subRequest{path: broadcast, track: producer, opts: opts, sub: sub, ready: ready}))
		if err != nil {
			_ = producer.Abort(err)
		} else {
			_ = producer.Finish()
		}
		sub.finish(err)
	}
	if !s.spawn(run) {
		producer.Close()
		sub.consumer.Close()
		return nil, s.endCause()
	}
	select {
	case err := <-ready:
		if err != nil {
			sub.Close()
			return nil, err
		}
		return sub, nil
	case <-ctx.Done():
		sub.Close()
		return nil, ctx.Err()
	}
}

// feed subscribes like Subscribe but into an existing track: the peer's
// groups of the track are added to it, and it is neither finished nor
// aborted when the subscription ends. It returns once SUBSCRIBE_OK arrived;
// result then gets the error that ends the subscription (nil when the
// publisher finished it).
func (s *Session) feed(ctx context.Context, broadcast Path, track *TrackProducer, opts SubscribeOptions) (*Subscription, <-chan error, error) {
	if err := opts.check(s.version); err != nil {
		return nil, nil, err
	}
	sub := newSubscriptionHandle(s, nil)
	ready := make(chan error, 1)
	res := make(chan error, 1)
	run := func() {
		raw := s.subscribe(s.ctx, subRequest{path: broadcast, track: track, opts: opts, sub: sub, ready: ready})
		err := s.remoteEnd(raw)
		sub.finish(err)
		if raw != nil && err == nil {
			// The track did not finish: the session did, cleanly (the
			// stream failed with the peer's close or with our reset as
			// the session ended). A Client may go on elsewhere.
			err = errPeerClosed
		}
		res <- err
	}
	if !s.spawn(run) {
		return nil, nil, s.endCause()
	}
	select {
	case err := <-ready:
		if err != nil {
			return nil, nil, err
		}
		return sub, res, nil
	case <-ctx.Done():
		sub.Close()
		return nil, nil, ctx.Err()
	}
}

func newSubscriptionHandle(s *Session, consumer *TrackConsumer) *Subscription {
	return &Subscription{sess: s, consumer: consumer, done: make(chan struct{}),
		changed: make(chan struct{}), infoChanged: make(chan struct{})}
}

// attach gives the subscription its stream once it is open.
func (sub *Subscription) attach(cs *controlStream, cancel context.CancelCauseFunc) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.cs, sub.cancel = cs, cancel
	if sub.closed {
		cancel(ErrCancel)
	}
}

func (sub *Subscription) setInfo(ok *lite.SubscribeOk) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.info = SubscribeOptions{Priority: ok.Priority, Ordered: ok.Ordered, MaxLatency: ok.MaxLatency,
		Start: groupPtr(ok.StartGroup), End: groupPtr(ok.EndGroup)}
	close(sub.infoChanged)
	sub.infoChanged = make(chan struct{})
}

func (sub *Subscription) addDrop(d *lite.SubscribeDrop) {
	drop := GroupDrop{Start: d.Start, End: d.End}
	if d.Error != 0 {
		drop.Err = ErrorFromCode(uint32(min(d.Error, uint64(^uint32(0)))))
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.drops = append(sub.drops, drop)
	if len(sub.drops) > maxDrops {
		sub.drops = sub.drops[1:]
		sub.dropped++
	}
	close(sub.changed)
	sub.changed = make(chan struct{})
}

func (sub *Subscription) finish(err error) {
	sub.mu.Lock()
	sub.err = err
	sub.mu.Unlock()
	close(sub.done)
}

// Track returns the subscription's track. It stays valid until Close; Clone
// it to read from several goroutines or beyond Close.
func (sub *Subscription) Track() *TrackConsumer { return sub.consumer }

// Info returns the publisher's latest SUBSCRIBE_OK: lite-01 carries only the
// priority and lite-02 nothing (zero values); from lite-03 on every field,
// with the start group resolved once the publisher knows it.
func (sub *Subscription) Info() SubscribeOptions {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.info
}

// InfoChanged returns a channel closed when the next SUBSCRIBE_OK arrives,
// such as the answer to an Update (lite-03+).
func (sub *Subscription) InfoChanged() <-chan struct{} {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.infoChanged
}

// Update changes the subscription's options (all of them: send the whole
// set). From lite-03 on the publisher answers with a new SUBSCRIBE_OK, seen
// in Info; before, only the priority is carried and the other fields are
// refused with ErrUnsupported. It only waits while the transport's flow
// control holds the stream; Close interrupts that.
func (sub *Subscription) Update(opts SubscribeOptions) error {
	v := sub.sess.version
	if err := opts.check(v); err != nil {
		return err
	}
	select {
	case <-sub.done:
		return ErrClosed
	default:
	}
	sub.mu.Lock()
	cs := sub.cs
	sub.mu.Unlock()
	msg := lite.SubscribeUpdate{Priority: opts.Priority, Ordered: opts.Ordered, MaxLatency: opts.MaxLatency,
		StartGroup: optGroup(opts.Start), EndGroup: optGroup(opts.End)}
	sub.wmu.Lock()
	defer sub.wmu.Unlock()
	if err := cs.write(&msg, v); err != nil {
		return streamError(err)
	}
	return nil
}

// NextDrop waits for the next report of dropped groups. Once the
// subscription ended and every report was returned, it fails with io.EOF
// (or the error that ended the subscription).
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
		cancel(ErrCancel)
	}
}

// Fetch asks the peer for one group of a track, by sequence, from its cache
// (or its upstream's, through relays), at the given priority. It returns
// once the group's first frame or its end arrived, or fails: ErrNotFound
// when the peer does not have it. ctx bounds the whole transfer: when it is
// done, the fetch is abandoned and the group aborted. moq-lite-03 and
// later; older sessions fail with ErrUnsupported.
func (s *Session) Fetch(ctx context.Context, broadcast Path, track string, sequence uint64, priority uint8) (*GroupConsumer, error) {
	if s.version < lite.Lite03 {
		return nil, fmt.Errorf("%w: FETCH needs moq-lite-03 or later, not %s", ErrUnsupported, s.version)
	}
	cs, err := s.openControl(lite.ControlFetch)
	if err != nil {
		return nil, streamError(err)
	}
	stop := context.AfterFunc(ctx, func() { cs.reset(ErrCancel) })
	stopSession := context.AfterFunc(s.ctx, func() { cs.reset(ErrCancel) })
	fail := func(err error) (*GroupConsumer, error) {
		stop()
		stopSession()
		cs.reset(ErrCancel)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if isDecodeError(err) {
			err = decodeError("fetched group", err)
		}
		return nil, streamError(err)
	}
	msg := lite.Fetch{Broadcast: string(broadcast), Track: track, Priority: priority, Group: sequence}
	if err := cs.write(&msg, s.version); err != nil {
		return fail(err)
	}
	// A fetch is one request: our side of the stream is done.
	_ = cs.st.Close()

	producer := wrapGroupProducer(&groupState{sequence: sequence, producers: 1})
	consumer := producer.Consume()
	size, err := cs.r.ReadVarint()
	switch {
	case errors.Is(err, io.EOF):
		// An empty group.
		stop()
		stopSession()
		_ = producer.Finish()
		producer.Close()
		return consumer, nil
	case err != nil:
		producer.Close()
		return fail(err)
	}
	read := func() {
		defer stop()
		defer stopSession()
		defer producer.Close()
		err := readFrame(cs.r, producer, size)
		if err == nil {
			err = readFrames(cs.r, producer)
		}
		if err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			_ = producer.Abort(err)
			cs.reset(ErrCancel)
			return
		}
		_ = producer.Finish()
		cs.st.CancelRead(ErrorCode(ErrCancel))
	}
	if !s.spawn(read) {
		_ = producer.Abort(s.endCause())
		producer.Close()
		return fail(ErrClosed)
	}
	return consumer, nil
}
