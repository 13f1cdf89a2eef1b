package lite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/internal/shrink"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// This file is the subscriber half of a session: it learns the peer's
// broadcasts through announce streams, publishes them into Config.Consume,
// subscribes to their tracks on demand and receives their groups.

// runAnnounced asks the peer for its broadcasts under prefix and mirrors them
// into s.consume until the stream or the session ends.
func (s *Session) runAnnounced(prefix moq.Path) {
	cs, err := s.openControl(s.ctx, ControlAnnounce)
	if err != nil {
		return
	}
	stop := context.AfterFunc(s.ctx, func() { cs.reset(moq.ErrCancel) })
	defer stop()

	a := &announced{active: make(map[moq.Path]*engine.Remote)}
	err = s.readAnnounces(cs, prefix, a)
	// Whatever ends the stream ends the broadcasts learned through it.
	endErr := s.remoteEnd(err)
	for _, r := range a.active {
		if r != nil {
			r.End(endErr)
		}
	}
	switch {
	case err == nil:
		cs.finish()
	case errors.Is(err, moq.ErrDecode) || errors.Is(err, moq.ErrProtocolViolation):
		s.fail(err)
	case s.ctx.Err() == nil:
		// An oversized message, too many broadcasts or the peer's reset:
		// abandon both sides, or unread data would hold connection credit.
		s.log.Warn("announce stream failed", "prefix", prefix, "err", err)
		cs.reset(err)
	}
}

// announced is what one announce stream announced: the broadcasts mirrored,
// and nil for those left out (loops) so that their end is expected.
type announced struct {
	active map[moq.Path]*engine.Remote
	peak   int // see shrink.Map
}

// end forgets path, which the peer no longer announces.
func (a *announced) end(path moq.Path) {
	delete(a.active, path)
	a.active = shrink.Map(a.active, &a.peak)
}

// readAnnounces mirrors the announcements of one announce stream into a.
func (s *Session) readAnnounces(cs *controlStream, prefix moq.Path, a *announced) error {
	if err := cs.write(s.ctx, &AnnounceInterest{Prefix: string(prefix), ExcludeHop: s.nodeID}, s.version); err != nil {
		return streamError(err)
	}
	if s.version.UsesSetup() {
		var init AnnounceInit
		if err := readBody(cs.r, &init, s.version, maxAnnounceInit, "ANNOUNCE_INIT"); err != nil {
			return readError(err)
		}
		for _, suffix := range init.Suffixes {
			if err := s.announced(a, prefix.Join(moq.NewPath(suffix)), nil); err != nil {
				return err
			}
		}
	}
	for {
		var msg Announce
		if err := cs.read(&msg, s.version, "ANNOUNCE"); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return readError(err)
		}
		path := prefix.Join(moq.NewPath(msg.Suffix))
		if msg.Active {
			if err := s.announced(a, path, msg.Hops); err != nil {
				return err
			}
			continue
		}
		r, ok := a.active[path]
		if !ok {
			return fmt.Errorf("%w: ended broadcast %q was never announced", moq.ErrProtocolViolation, path)
		}
		a.end(path)
		if r != nil {
			r.End(nil)
		}
	}
}

// readError classifies a failed read of a control stream: a malformed
// message stays a decode error, anything else is the stream's error.
func readError(err error) error {
	if errors.Is(err, moq.ErrDecode) {
		return err
	}
	return streamError(err)
}

// announced publishes a broadcast the peer announced, serving its tracks
// and fetches on demand. One whose hops hold our node id went round a loop
// and is left out.
func (s *Session) announced(a *announced, path moq.Path, hops []uint64) error {
	if _, dup := a.active[path]; dup {
		return fmt.Errorf("%w: broadcast %q announced twice", moq.ErrProtocolViolation, path)
	}
	if len(a.active) >= s.limits.MaxAnnounced {
		return fmt.Errorf("%w: more than %d broadcasts announced", moq.ErrBoundsExceeded, s.limits.MaxAnnounced)
	}
	if s.nodeID != 0 && slices.Contains(hops, s.nodeID) {
		s.log.Debug("ignoring a broadcast that came through us", "broadcast", path, "hops", hops)
		a.active[path] = nil
		return nil
	}
	r := s.newRemote(path, hops)
	// The mirror is ready to serve requests before anyone can see it.
	if err := s.consume.PublishBroadcast(path, r.Consumer()); err != nil {
		s.log.Debug("announced broadcast outside the allowed prefixes", "broadcast", path, "err", err)
		r.End(nil)
		return nil
	}
	a.active[path] = r
	s.log.Debug("broadcast announced", "broadcast", path, "hops", hops)
	return nil
}

// newRemote mirrors the peer's broadcast at path: its tracks are subscribed
// when requested, on goroutines of the session, and end with it.
func (s *Session) newRemote(path moq.Path, hops []uint64) *engine.Remote {
	return engine.NewRemote(hops, s.cache, func(track *moq.TrackProducer) {
		if !s.spawn(func() { s.runSubscription(path, track) }) {
			_ = track.Abort(s.endCause())
			track.Close()
		}
	}, func(ctx context.Context, track string, sequence uint64, priority uint8) (*moq.GroupConsumer, error) {
		return s.Fetch(ctx, path, track, sequence, priority)
	})
}

// releaseRemote ends a broadcast of ConsumeBroadcast with err, once.
func (s *Session) releaseRemote(r *engine.Remote, err error) {
	s.mu.Lock()
	_, ok := s.remotes[r]
	delete(s.remotes, r)
	s.mu.Unlock()
	if ok {
		r.End(err)
	}
}

// endRemotes ends the broadcasts of ConsumeBroadcast as the session ends:
// later subscribers learn why it ended.
func (s *Session) endRemotes(err error) {
	s.mu.Lock()
	remotes := s.remotes
	s.remotes = nil
	s.mu.Unlock()
	for r := range remotes {
		r.End(sessionEnded(err))
	}
}

// ConsumeBroadcast mirrors the peer's broadcast at path, announced or not:
// its tracks are subscribed from the peer on demand, and a track the peer
// does not have fails with moq.ErrNotFound. It lives until release or the
// end of the session, and holds no goroutine while no track is subscribed.
func (s *Session) ConsumeBroadcast(path moq.Path) (*moq.BroadcastConsumer, func()) {
	r := s.newRemote(path, nil)
	s.mu.Lock()
	if s.remotes == nil {
		s.mu.Unlock()
		r.End(s.endCause())
		return r.Consumer(), func() {}
	}
	s.remotes[r] = struct{}{}
	s.mu.Unlock()
	return r.Consumer(), func() { s.releaseRemote(r, moq.ErrClosed) }
}

// remoteEnd decides how the peer's streams ending with err end local state:
// nil (a clean end) when the stream finished or the session closed cleanly.
func (s *Session) remoteEnd(err error) error {
	if err == nil || errors.Is(err, engine.ErrPeerClosed) {
		return nil
	}
	if s.ctx.Err() != nil {
		return s.err
	}
	return err
}

// subscription is one of our subscriptions to the peer, as the group streams
// find it.
type subscription struct {
	track *moq.TrackProducer

	mu      sync.Mutex
	active  int           // group streams being received
	changed chan struct{} // closed and replaced when a group stream starts or ends
}

func newSubscription(track *moq.TrackProducer) *subscription {
	return &subscription{track: track, changed: make(chan struct{})}
}

// groupStream records a group stream starting (+1) or ending (-1).
func (sub *subscription) groupStream(delta int) {
	sub.mu.Lock()
	sub.active += delta
	close(sub.changed)
	sub.changed = make(chan struct{})
	sub.mu.Unlock()
}

// lateGroupWindow is how long a subscription whose stream the peer ended keeps
// accepting group streams that have not arrived yet.
const lateGroupWindow = 500 * time.Millisecond

// waitQuiet returns once no group stream is open and none started for
// lateGroupWindow. Peers may end a subscription before all its group streams
// arrive (the JS publisher closes the subscribe stream as soon as its track
// ends, while its groups are still being sent), and a group arriving after the
// track is finished would be refused.
func (sub *subscription) waitQuiet(ctx context.Context) {
	for {
		sub.mu.Lock()
		active, changed := sub.active, sub.changed
		sub.mu.Unlock()
		if active > 0 {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		timer := time.NewTimer(lateGroupWindow)
		select {
		case <-changed:
			timer.Stop()
		case <-timer.C:
			return
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// runSubscription subscribes to a track the peer publishes and feeds it until
// the peer ends it, it fails, or nobody consumes it any more.
func (s *Session) runSubscription(path moq.Path, track *moq.TrackProducer) {
	defer track.Close()
	info := track.Info()
	err := s.remoteEnd(s.subscribe(s.ctx, subRequest{path: path, track: track, opts: engine.SubscribeOptions{Priority: info.Priority}}))
	if err != nil {
		s.log.Debug("subscription ended", "broadcast", path, "track", info.Name, "err", err)
		_ = track.Abort(err)
		return
	}
	_ = track.Finish()
}

// subRequest describes one subscription to run.
type subRequest struct {
	path  moq.Path
	track *moq.TrackProducer
	opts  engine.SubscribeOptions
	// sub, when set, receives the replies and the means to update.
	sub *engine.Subscription
	// answered, when set, is called once with nil when SUBSCRIBE_OK
	// arrived, or with the error that ended the subscription before.
	answered func(error)
}

// subscribe runs one subscription, feeding the peer's groups into
// req.track, until the peer finishes it (nil), it fails, ctx is done, or
// req.track has no consumer left (moq.ErrCancel).
func (s *Session) subscribe(ctx context.Context, req subRequest) (err error) {
	answered := false
	defer func() {
		if req.answered != nil && !answered {
			req.answered(err)
		}
	}()
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	entry := newSubscription(req.track)
	s.subs[id] = entry
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.subs = shrink.Map(s.subs, &s.subsPeak)
		close(s.subsGone)
		s.subsGone = make(chan struct{})
		s.mu.Unlock()
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cs, err := s.openControl(ctx, ControlSubscribe)
	if err != nil {
		return streamError(err)
	}
	// When the last local consumer leaves, or the track is aborted here,
	// cancel upstream.
	if !s.spawn(func() {
		switch err := req.track.Unused(ctx); {
		case err == nil:
			cancel(moq.ErrCancel)
		case ctx.Err() == nil:
			cancel(err)
		}
	}) {
		cs.reset(moq.ErrCancel)
		return moq.ErrClosed
	}
	stop := context.AfterFunc(ctx, func() { cs.reset(moq.ErrCancel) })
	defer func() {
		// A subscription that failed abandons its stream both ways.
		if stop() && err != nil {
			cs.reset(moq.ErrCancel)
		}
	}()

	if req.sub != nil {
		req.sub.Attach(cancel, func(uctx context.Context, opts engine.SubscribeOptions) error {
			return s.update(uctx, cs, opts)
		})
	}
	o := req.opts
	msg := Subscribe{ID: id, Broadcast: string(req.path), Track: req.track.Info().Name, Priority: o.Priority,
		Ordered: o.Ordered, MaxLatency: o.MaxLatency, StartGroup: optGroup(o.Start), EndGroup: optGroup(o.End)}
	if err := cs.write(ctx, &msg, s.version); err != nil {
		return s.subscribeFailed(ctx, err)
	}
	ok, _, err := ReadSubscribeResponse(cs.r, s.version, maxControlMessage)
	if errors.Is(err, io.EOF) {
		// Not the end of the track: there was none. io.EOF must not
		// reach the track's consumers, who would take it for one.
		cs.finish()
		return fmt.Errorf("%w: subscribe stream ended before SUBSCRIBE_OK", moq.ErrProtocolViolation)
	}
	if err != nil {
		return s.subscribeFailed(ctx, err)
	}
	if ok == nil {
		err := fmt.Errorf("%w: first subscribe reply is not SUBSCRIBE_OK", moq.ErrProtocolViolation)
		s.fail(err)
		return err
	}
	// The publisher has the track: a relay's subscribers may be answered.
	_ = req.track.Accept()
	if req.sub != nil {
		req.sub.SetInfo(okOptions(ok))
	}
	if req.answered != nil {
		req.answered(nil)
		answered = true
	}
	for {
		ok, drop, err := ReadSubscribeResponse(cs.r, s.version, maxControlMessage)
		if err != nil {
			if errors.Is(err, io.EOF) {
				cs.finish()
				entry.waitQuiet(ctx)
				return nil
			}
			return s.subscribeFailed(ctx, err)
		}
		switch {
		case ok != nil && req.sub != nil:
			req.sub.SetInfo(okOptions(ok))
		case drop != nil:
			s.log.Debug("groups dropped by publisher", "id", id, "start", drop.Start, "end", drop.End, "code", drop.Error)
			if req.sub != nil {
				req.sub.AddDrop(dropReport(drop))
			}
		}
	}
}

// WaitSubscriptions waits until the session has no subscription left, ctx
// is done or the session ends.
func (s *Session) WaitSubscriptions(ctx context.Context) {
	for {
		s.mu.Lock()
		n, gone := len(s.subs), s.subsGone
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-gone:
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// subscribeFailed classifies the end of a subscribe stream that did not finish.
func (s *Session) subscribeFailed(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); ctx.Err() != nil && s.ctx.Err() == nil {
		return cause
	}
	if s.ctx.Err() != nil {
		// The session ended, resetting the stream: err may be that reset.
		return s.endCause()
	}
	if errors.Is(err, moq.ErrDecode) || wire.IsDecodeError(err) {
		err = decodeError("subscribe reply", err)
		s.fail(err)
		return err
	}
	return streamError(err)
}

// recvGroup receives one group stream into its subscription's track.
func (s *Session) recvGroup(st transport.ReceiveStream) {
	inTime := s.deadline("group stream", func() { st.CancelRead(ErrorCode(moq.ErrTimeout)) })
	r := wire.NewReader(st)
	if _, err := ReadDataType(r); err != nil {
		code := moq.ErrCancel
		if wire.IsDecodeError(err) {
			code = moq.ErrUnexpectedStream
		}
		inTime()
		st.CancelRead(ErrorCode(code))
		return
	}
	var hdr Group
	err := readBody(r, &hdr, s.version, maxControlMessage, "GROUP")
	if !inTime() {
		return // the deadline stopped the stream
	}
	if err != nil {
		if errors.Is(err, moq.ErrDecode) {
			st.CancelRead(ErrorCode(moq.ErrDecode))
			s.fail(err)
			return
		}
		code := moq.ErrCancel
		if errors.Is(err, wire.ErrTooLarge) {
			code = moq.ErrBoundsExceeded
		}
		st.CancelRead(ErrorCode(code))
		return
	}
	s.mu.Lock()
	sub := s.subs[hdr.SubscribeID]
	s.mu.Unlock()
	if sub == nil {
		// A late group of a subscription that already ended.
		st.CancelRead(ErrorCode(moq.ErrCancel))
		return
	}
	sub.groupStream(1)
	defer sub.groupStream(-1)
	group, err := sub.track.CreateGroup(hdr.Sequence)
	if err != nil {
		st.CancelRead(ErrorCode(err))
		return
	}
	defer group.Close()
	if err := s.readFrames(r, group); err != nil {
		s.log.Debug("receiving group failed", "id", hdr.SubscribeID, "group", hdr.Sequence, "err", err)
		err = s.remoteEnd(err)
		if err == nil {
			err = moq.ErrCancel
		}
		_ = group.Abort(err)
		st.CancelRead(ErrorCode(err))
		return
	}
	_ = group.Finish()
	s.stats.GroupsIn.Add(1)
}

// readFrames copies frames from a group stream into group until the
// stream's FIN, counting their bytes.
func (s *Session) readFrames(r *wire.Reader, group *moq.GroupProducer) error {
	for {
		size, err := ReadFrameHeader(r, maxFrameSize)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return streamError(err)
		}
		if err := readFrame(r, group, size); err != nil {
			return err
		}
		s.stats.BytesIn.Add(uint64(size))
	}
}

// readFrame copies the payload of one frame of the given size into group.
func readFrame(r *wire.Reader, group *moq.GroupProducer, size int) error {
	if size > frameChunk {
		return readChunkedFrame(r, group, size)
	}
	payload := make([]byte, size)
	if err := readPayload(r, payload); err != nil {
		return err
	}
	return group.WriteFrame(payload)
}

// readChunkedFrame receives a large frame piece by piece, so memory is only
// committed as its bytes arrive.
func readChunkedFrame(r *wire.Reader, group *moq.GroupProducer, size int) error {
	frame, err := group.CreateFrame(moq.FrameInfo{Size: uint64(size)})
	if err != nil {
		return err
	}
	defer frame.Close()
	for remaining := size; remaining > 0; {
		chunk := make([]byte, min(remaining, frameChunk))
		if err := readPayload(r, chunk); err != nil {
			_ = frame.Abort(err)
			return err
		}
		if err := frame.Write(chunk); err != nil {
			return err
		}
		remaining -= len(chunk)
	}
	return frame.Finish()
}

// readPayload fills p; a stream that ends first carried a short frame.
func readPayload(r *wire.Reader, p []byte) error {
	if err := r.ReadFull(p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: group stream ended inside a frame", moq.ErrWrongSize)
		}
		return streamError(err)
	}
	return nil
}
