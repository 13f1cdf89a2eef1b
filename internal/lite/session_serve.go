package lite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/serve"
	"github.com/moqgo/moq/transport"
)

// This file serves the peer's subscriptions: SUBSCRIBE_OK, then one stream
// per group (serve.Subscription does the delivery rules), and the changes
// SUBSCRIBE_UPDATE makes.

// served is one subscription of the peer that this session serves: the wire
// side of a serve.Subscription.
type served struct {
	s     *Session
	id    uint64
	track *moq.TrackConsumer
	cs    *controlStream
	log   *slog.Logger
	ctx   context.Context // ends with the subscription
	done  chan struct{}   // closed when serving ends
	sub   *serve.Subscription
	// okSent is set once the first SUBSCRIBE_OK went out: updates are
	// answered only after it.
	okSent atomic.Bool
}

// OpenGroup implements serve.Sender.
func (sv *served) OpenGroup(ctx context.Context) (transport.SendStream, error) {
	return sv.s.conn.OpenUniStream(ctx)
}

// WriteGroup implements serve.Sender.
func (sv *served) WriteGroup(ctx context.Context, st transport.SendStream, g *moq.GroupConsumer) error {
	return sv.s.writeGroup(ctx, st, sv.id, g)
}

// Drop implements serve.Sender with SUBSCRIBE_DROP. Versions before lite-03
// cannot say so; their subscriptions never ask for what makes groups drop.
func (sv *served) Drop(start, end uint64, err error) {
	if sv.s.version < Lite03 {
		return
	}
	var code uint64
	if err != nil {
		code = uint64(ErrorCode(err))
	}
	sv.s.stats.GroupsDropped.Add(end - start + 1)
	sv.log.Debug("dropping groups", "start", start, "end", end, "err", err)
	_ = sv.reply(nil, &SubscribeDrop{Start: start, End: end, Error: code})
}

// Code implements serve.Sender.
func (sv *served) Code(err error) uint32 { return ErrorCode(err) }

// reply writes one reply on the subscribe stream.
func (sv *served) reply(ok *SubscribeOk, drop *SubscribeDrop) error {
	return sv.cs.send(sv.ctx, func(b []byte) ([]byte, error) {
		return AppendSubscribeResponse(b, ok, drop, sv.s.version)
	})
}

// replyOK describes the subscription as it now is in SUBSCRIBE_OK.
func (sv *served) replyOK() error {
	o := sv.sub.Options()
	err := sv.reply(&SubscribeOk{Priority: o.Priority, Ordered: o.Ordered, MaxLatency: o.MaxLatency,
		StartGroup: optGroup(o.Start), EndGroup: optGroup(o.End)}, nil)
	sv.okSent.Store(true)
	return err
}

// serveSubscribe answers one SUBSCRIBE: once the track is confirmed
// (upstream, for a relay), SUBSCRIBE_OK, then one stream per group until the
// subscription is complete or the peer cancels it.
func (s *Session) serveSubscribe(cs *controlStream, msg *Subscribe) {
	if !s.take(&s.active.subscriptions, s.limits.MaxSubscriptions) {
		s.refuse(cs, "subscription", s.limits.MaxSubscriptions)
		return
	}
	defer s.give(&s.active.subscriptions)
	log := s.log.With("id", msg.ID, "broadcast", msg.Broadcast, "track", msg.Track)

	broadcast, err := s.lookup(msg.Broadcast)
	if err != nil {
		log.Debug("subscribe: no broadcast", "err", err)
		cs.reset(err)
		return
	}
	track, pending, err := s.subscribeTrack(broadcast, moq.Track{Name: msg.Track, Priority: msg.Priority})
	if errors.Is(err, moq.ErrBoundsExceeded) {
		s.refuse(cs, "subscription to an unconfirmed track", s.limits.MaxPendingSubscriptions)
		return
	}
	if err != nil {
		log.Debug("subscribe refused", "err", err)
		cs.reset(err)
		return
	}
	defer track.Close()
	// A pending subscription stops counting as such once answered.
	answered := sync.OnceFunc(func() {
		if pending {
			s.give(&s.active.pending)
		}
	})
	defer answered()

	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	sv := &served{s: s, id: msg.ID, track: track, cs: cs, log: log, ctx: ctx, done: make(chan struct{})}
	sv.sub = serve.NewSubscription(track, engine.SubscribeOptions{Priority: msg.Priority, Ordered: msg.Ordered,
		MaxLatency: msg.MaxLatency, Start: groupPtr(msg.StartGroup), End: groupPtr(msg.EndGroup)}, &s.prio, s.writers, sv, log)
	s.mu.Lock()
	s.served[sv] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.served, sv)
		s.mu.Unlock()
		close(sv.done)
	}()

	peerDone := make(chan struct{})
	if !s.spawn(func() {
		defer close(peerDone)
		s.readSubscribeUpdates(sv, cancel)
	}) {
		cs.reset(moq.ErrCancel)
		return
	}
	err = s.confirmed(ctx, track)
	answered()
	if err != nil {
		switch {
		case s.ctx.Err() != nil:
		case errors.Is(context.Cause(ctx), errUnsubscribed):
			cs.finish()
		default:
			log.Debug("subscribe: track not confirmed", "err", err)
			cs.reset(err)
		}
		return
	}
	if err := sv.replyOK(); err != nil {
		cs.reset(moq.ErrCancel)
		return
	}
	s.stats.Subscriptions.Add(1)
	defer s.stats.Subscriptions.Add(-1)

	err = sv.sub.Run(ctx)
	switch {
	case err == nil:
		// Give the peer time to read the last groups before the end, then
		// wait for it to close its side in answer, so that a session closing
		// right after does not cut the end off.
		waitFor(ctx.Done(), trackEndGrace)
		if cs.lock(ctx) == nil {
			_ = cs.st.Close()
			cs.unlock()
		}
		waitFor(peerDone, peerCloseTimeout)
		cs.st.CancelRead(ErrorCode(moq.ErrCancel))
		log.Debug("subscription complete")
	case s.ctx.Err() != nil:
		// The session is gone with its streams.
	case errors.Is(context.Cause(ctx), errUnsubscribed):
		log.Debug("subscription cancelled by peer")
		cs.finish()
	default:
		log.Debug("subscription failed", "err", err)
		cs.reset(err)
	}
}

// subscribeTrack subscribes to a track of broadcast for the peer. A track
// not confirmed yet may cost a subscription upstream: it counts against the
// peer's pending subscriptions (pending reports that it does; the caller
// gives it back once the track is answered) and its budget of unconfirmed
// tracks, and fails with moq.ErrBoundsExceeded past them, before any request
// is made.
func (s *Session) subscribeTrack(broadcast *moq.BroadcastConsumer, info moq.Track) (track *moq.TrackConsumer, pending bool, err error) {
	track, err = broadcast.SubscribeExisting(info)
	switch {
	case err == nil && isConfirmed(track):
		return track, false, nil
	case err == nil:
		track.Close()
	case !errors.Is(err, moq.ErrNotFound):
		return nil, false, err
	}
	if !s.take(&s.active.pending, s.limits.MaxPendingSubscriptions) {
		return nil, false, moq.ErrBoundsExceeded
	}
	if !s.unconfirmed.Allow() {
		s.give(&s.active.pending)
		return nil, false, moq.ErrBoundsExceeded
	}
	track, err = broadcast.SubscribeTrack(info)
	if err != nil {
		s.give(&s.active.pending)
		return nil, false, err
	}
	return track, true, nil
}

// isConfirmed reports, without waiting, whether track is confirmed.
func isConfirmed(track *moq.TrackConsumer) bool {
	return track.Accepted(doneContext) == nil
}

// confirmed waits, within the request timeout, until track is confirmed
// by its source.
func (s *Session) confirmed(ctx context.Context, track *moq.TrackConsumer) error {
	ctx, cancel := context.WithTimeout(ctx, s.limits.RequestTimeout)
	defer cancel()
	if err := track.Accepted(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: no answer upstream in %v", moq.ErrTimeout, s.limits.RequestTimeout)
		}
		return err
	}
	return nil
}

// doneContext is already done: a wait given it only looks.
var doneContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// waitFor blocks until done is closed or d has passed.
func waitFor(done <-chan struct{}, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// errUnsubscribed is the cause when the peer closes its side of a subscribe stream.
var errUnsubscribed = errors.New("moq: unsubscribed")

// readSubscribeUpdates applies SUBSCRIBE_UPDATE messages until the peer ends
// the subscription, which cancels it. From lite-03 on each update is
// answered with a SUBSCRIBE_OK describing the subscription as it now is.
func (s *Session) readSubscribeUpdates(sv *served, cancel context.CancelCauseFunc) {
	for {
		var update SubscribeUpdate
		err := sv.cs.read(&update, s.version, "SUBSCRIBE_UPDATE")
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				cancel(errUnsubscribed)
			case errors.Is(err, moq.ErrDecode):
				cancel(err)
				s.fail(err)
			default:
				cancel(streamError(err))
			}
			return
		}
		sv.sub.Update(engine.SubscribeOptions{Priority: update.Priority, Ordered: update.Ordered,
			MaxLatency: update.MaxLatency, Start: groupPtr(update.StartGroup), End: groupPtr(update.EndGroup)})
		sv.log.Debug("subscription updated", "priority", update.Priority, "ordered", update.Ordered,
			"max_latency", update.MaxLatency, "start", update.StartGroup, "end", update.EndGroup)
		if s.version >= Lite03 && sv.okSent.Load() {
			_ = sv.replyOK()
		}
	}
}
