package lite

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/wire"
)

// This file is the application's explicit requests to the peer:
// subscriptions with options, and fetches.

// checkOptions refuses the options version v cannot carry: every field but
// Priority needs lite-03.
func checkOptions(o engine.SubscribeOptions, v Version) error {
	if v >= Lite03 {
		return nil
	}
	if o.Ordered || o.MaxLatency != 0 || o.Start != nil || o.End != nil {
		return fmt.Errorf("%w: group order, max latency, start and end groups need moq-lite-03 or later, not %s", moq.ErrUnsupported, v)
	}
	return nil
}

func optGroup(seq *uint64) OptGroup {
	if seq == nil {
		return OptGroup{}
	}
	return OptGroup{Seq: *seq, Valid: true}
}

func groupPtr(g OptGroup) *uint64 {
	if !g.Valid {
		return nil
	}
	seq := g.Seq
	return &seq
}

// okOptions describes a subscription as SUBSCRIBE_OK does.
func okOptions(ok *SubscribeOk) engine.SubscribeOptions {
	return engine.SubscribeOptions{Priority: ok.Priority, Ordered: ok.Ordered, MaxLatency: ok.MaxLatency,
		Start: groupPtr(ok.StartGroup), End: groupPtr(ok.EndGroup)}
}

// dropReport turns a SUBSCRIBE_DROP into the report applications see.
func dropReport(d *SubscribeDrop) engine.GroupDrop {
	drop := engine.GroupDrop{Start: d.Start, End: d.End}
	if d.Error != 0 {
		drop.Err = ErrorFromCode(uint32(min(d.Error, uint64(^uint32(0)))))
	}
	return drop
}

// CanStartAt reports whether subscriptions can name their start group
// (lite-03 and later).
func (s *Session) CanStartAt() bool { return s.version >= Lite03 }

// Subscribe subscribes to a track of the peer's broadcast with explicit
// delivery options and waits for the publisher's SUBSCRIBE_OK (ctx bounds
// that wait). The subscription is not shared with other consumers of the
// track: it has its own options, updates and drops.
func (s *Session) Subscribe(ctx context.Context, broadcast moq.Path, track string, opts engine.SubscribeOptions) (*engine.Subscription, error) {
	if err := checkOptions(opts, s.version); err != nil {
		return nil, err
	}
	producer := moq.NewTrack(moq.Track{Name: track, Priority: opts.Priority})
	sub := engine.NewSubscription(producer.Consume())
	ready := make(chan error, 1)
	run := func() {
		defer producer.Close()
		err := s.remoteEnd(s.subscribe(s.ctx, subRequest{path: broadcast, track: producer, opts: opts, sub: sub, answered: answer(ready)}))
		if err != nil {
			_ = producer.Abort(err)
		} else {
			_ = producer.Finish()
		}
		sub.Finish(err)
	}
	if !s.spawn(run) {
		producer.Close()
		sub.Close()
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

// Feed subscribes like Subscribe but into an existing track: the peer's
// groups of the track are added to it, and it is neither finished nor
// aborted when the subscription ends. It returns once SUBSCRIBE_OK arrived;
// result then gets the error that ends the subscription: nil when the
// publisher finished it, engine.ErrPeerClosed when the session ended cleanly
// first.
func (s *Session) Feed(ctx context.Context, broadcast moq.Path, track *moq.TrackProducer, opts engine.SubscribeOptions) (*engine.Subscription, <-chan error, error) {
	if err := checkOptions(opts, s.version); err != nil {
		return nil, nil, err
	}
	sub := engine.NewSubscription(nil)
	ready := make(chan error, 1)
	res := make(chan error, 1)
	run := func() {
		raw := s.subscribe(s.ctx, subRequest{path: broadcast, track: track, opts: opts, sub: sub, answered: answer(ready)})
		err := s.remoteEnd(raw)
		sub.Finish(err)
		if raw != nil && err == nil {
			// The track did not finish: the session did, cleanly (the
			// stream failed with the peer's close or with our reset as
			// the session ended). A Client may go on elsewhere.
			err = engine.ErrPeerClosed
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

// answer returns a subRequest.answered that sends to ready.
func answer(ready chan<- error) func(error) {
	return func(err error) { ready <- err }
}

// update sends a SUBSCRIBE_UPDATE with opts on a subscribe stream.
func (s *Session) update(ctx context.Context, cs *controlStream, opts engine.SubscribeOptions) error {
	if err := checkOptions(opts, s.version); err != nil {
		return err
	}
	ctx, stop := s.bound(ctx)
	defer stop()
	msg := SubscribeUpdate{Priority: opts.Priority, Ordered: opts.Ordered, MaxLatency: opts.MaxLatency,
		StartGroup: optGroup(opts.Start), EndGroup: optGroup(opts.End)}
	if err := cs.write(ctx, &msg, s.version); err != nil {
		return streamError(err)
	}
	return nil
}

// Fetch asks the peer for one group of a track, by sequence, from its cache
// (or its upstream's, through relays), at the given priority. It returns
// once the group's first frame or its end arrived, or fails: moq.ErrNotFound
// when the peer does not have it. ctx bounds the whole transfer: when it is
// done, the fetch is abandoned and the group aborted. moq-lite-03 and
// later; older sessions fail with moq.ErrUnsupported.
func (s *Session) Fetch(ctx context.Context, broadcast moq.Path, track string, sequence uint64, priority uint8) (*moq.GroupConsumer, error) {
	if s.version < Lite03 {
		return nil, fmt.Errorf("%w: FETCH needs moq-lite-03 or later, not %s", moq.ErrUnsupported, s.version)
	}
	ctx, stop := s.bound(ctx)
	cs, err := s.openControl(ctx, ControlFetch)
	if err != nil {
		err = fetchError(ctx, err)
		stop()
		return nil, err
	}
	reset := context.AfterFunc(ctx, func() { cs.reset(moq.ErrCancel) })
	fail := func(err error) (*moq.GroupConsumer, error) {
		err = fetchError(ctx, err)
		reset()
		stop()
		cs.reset(moq.ErrCancel)
		return nil, err
	}
	msg := Fetch{Broadcast: string(broadcast), Track: track, Priority: priority, Group: sequence}
	if err := cs.write(ctx, &msg, s.version); err != nil {
		return fail(err)
	}
	// A fetch is one request: our side of the stream is done.
	_ = cs.st.Close()

	producer := moq.NewGroup(sequence)
	consumer := producer.Consume()
	size, err := ReadFrameHeader(cs.r, maxFrameSize)
	switch {
	case errors.Is(err, io.EOF):
		// An empty group.
		reset()
		stop()
		_ = producer.Finish()
		producer.Close()
		return consumer, nil
	case err != nil:
		producer.Close()
		return fail(err)
	}
	read := func() {
		defer stop()
		defer reset()
		defer producer.Close()
		err := readFrame(cs.r, producer, size)
		if err == nil {
			s.stats.BytesIn.Add(uint64(size))
			err = s.readFrames(cs.r, producer)
		}
		if err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			_ = producer.Abort(err)
			cs.reset(moq.ErrCancel)
			return
		}
		_ = producer.Finish()
		cs.st.CancelRead(ErrorCode(moq.ErrCancel))
	}
	if !s.spawn(read) {
		_ = producer.Abort(s.endCause())
		producer.Close()
		return fail(moq.ErrClosed)
	}
	return consumer, nil
}

// fetchError explains why a fetch failed: ctx's end (the caller's, or the
// session's), a malformed reply, or the stream's error.
func fetchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if wire.IsDecodeError(err) {
		return decodeError("fetched group", err)
	}
	return streamError(err)
}
