package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// This file is the subscriber half of a session: it learns the peer's
// broadcasts through announce streams, publishes them into Config.Consume,
// subscribes to their tracks on demand and receives their groups.

// remoteBroadcast is a broadcast the peer announced.
type remoteBroadcast struct {
	broadcast *BroadcastProducer
	dynamic   *BroadcastDynamic
	cancel    context.CancelFunc
}

// end withdraws the broadcast: cleanly when err is nil.
func (rb *remoteBroadcast) end(err error) {
	rb.cancel()
	rb.dynamic.Close()
	if err != nil {
		_ = rb.broadcast.Abort(err)
	}
	rb.broadcast.Close()
}

// runAnnounced asks the peer for its broadcasts under prefix and mirrors them
// into s.consume until the stream or the session ends.
func (s *Session) runAnnounced(prefix Path) {
	cs, err := s.openControl(lite.ControlAnnounce)
	if err != nil {
		return
	}
	stop := context.AfterFunc(s.ctx, func() { cs.reset(ErrCancel) })
	defer stop()

	active := make(map[Path]*remoteBroadcast)
	err = s.readAnnounces(cs, prefix, active)
	// Whatever ends the stream ends the broadcasts learned through it.
	endErr := s.remoteEnd(err)
	for _, rb := range active {
		if rb != nil {
			rb.end(endErr)
		}
	}
	switch {
	case err == nil:
		cs.finish()
	case errors.Is(err, ErrDecode) || errors.Is(err, ErrProtocolViolation):
		s.fail(err)
	}
}

// readAnnounces mirrors the announcements of one announce stream into
// active. Broadcasts left out because their hops hold our node id (a loop)
// are kept in active as nil, so that their end is expected.
func (s *Session) readAnnounces(cs *controlStream, prefix Path, active map[Path]*remoteBroadcast) error {
	if err := cs.write(&lite.AnnounceInterest{Prefix: string(prefix), ExcludeHop: s.nodeID}, s.version); err != nil {
		return streamError(err)
	}
	if hasAnnounceInit(s.version) {
		body, err := cs.r.ReadMessage(maxAnnounceInit)
		if err != nil {
			return streamError(err)
		}
		var init lite.AnnounceInit
		if err := init.DecodeBody(body, s.version); err != nil {
			return decodeError("ANNOUNCE_INIT", err)
		}
		for _, suffix := range init.Suffixes {
			if err := s.announced(active, prefix.Join(NewPath(suffix)), nil); err != nil {
				return err
			}
		}
	}
	for {
		var msg lite.Announce
		if err := cs.readMessage(&msg, s.version, "ANNOUNCE"); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, ErrDecode) {
				return err
			}
			return streamError(err)
		}
		path := prefix.Join(NewPath(msg.Suffix))
		if msg.Active {
			if err := s.announced(active, path, msg.Hops); err != nil {
				return err
			}
			continue
		}
		rb, ok := active[path]
		if !ok {
			return fmt.Errorf("%w: ended broadcast %q was never announced", ErrProtocolViolation, path)
		}
		delete(active, path)
		if rb != nil {
			rb.end(nil)
		}
	}
}

// announced publishes a broadcast the peer announced, serving its tracks
// and fetches on demand. One whose hops hold our node id went round a loop
// and is left out.
func (s *Session) announced(active map[Path]*remoteBroadcast, path Path, hops []uint64) error {
	if _, dup := active[path]; dup {
		return fmt.Errorf("%w: broadcast %q announced twice", ErrProtocolViolation, path)
	}
	if s.nodeID != 0 && slices.Contains(hops, s.nodeID) {
		s.log.Debug("ignoring a broadcast that came through us", "broadcast", path, "hops", hops)
		active[path] = nil
		return nil
	}
	broadcast := NewBroadcast()
	broadcast.SetHops(hops)
	// Requests must be possible before anyone can see the broadcast.
	dynamic := broadcast.Dynamic()
	dynamic.HandleFetch(s.fetcher(path))
	if !s.consume.PublishBroadcast(path, broadcast.Consume()) {
		s.log.Debug("announced broadcast outside the allowed prefixes", "broadcast", path)
		dynamic.Close()
		broadcast.Close()
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	rb := &remoteBroadcast{broadcast: broadcast, dynamic: dynamic, cancel: cancel}
	active[path] = rb
	s.log.Debug("broadcast announced", "broadcast", path, "hops", hops)
	if !s.spawn(func() { s.serveRequests(ctx, path, dynamic) }) {
		delete(active, path)
		rb.end(ErrClosed)
	}
	return nil
}

// serveRequests subscribes to the tracks requested from a broadcast of the
// peer until ctx is done or the broadcast ends.
func (s *Session) serveRequests(ctx context.Context, path Path, dynamic *BroadcastDynamic) {
	for {
		track, err := dynamic.RequestedTrack(ctx)
		if err != nil {
			return
		}
		if !s.spawn(func() { s.runSubscription(path, track) }) {
			_ = track.Abort(ErrClosed)
			track.Close()
			return
		}
	}
}

// fetcher returns the fetch handler of a broadcast of the peer at path.
func (s *Session) fetcher(path Path) FetchHandler {
	return func(ctx context.Context, track string, sequence uint64, priority uint8) (*GroupConsumer, error) {
		return s.Fetch(ctx, path, track, sequence, priority)
	}
}

// remoteEnd decides how the peer's streams ending with err end local state:
// nil (a clean end) when the stream finished or the session closed cleanly.
func (s *Session) remoteEnd(err error) error {
	if err == nil || errors.Is(err, errPeerClosed) {
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
	track *TrackProducer

	mu      sync.Mutex
	active  int           // group streams being received
	changed chan struct{} // closed and replaced when a group stream starts or ends
}

func newSubscription(track *TrackProducer) *subscription {
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
func (s *Session) runSubscription(path Path, track *TrackProducer) {
	defer track.Close()
	info := track.Info()
	err := s.remoteEnd(s.subscribe(s.ctx, subRequest{path: path, track: track, opts: SubscribeOptions{Priority: info.Priority}}))
	if err != nil {
		s.log.Debug("subscription ended", "broadcast", path, "track", info.Name, "err", err)
		_ = track.Abort(err)
		return
	}
	_ = track.Finish()
}

// subRequest describes one subscription to run.
type subRequest struct {
	path  Path
	track *TrackProducer
	opts  SubscribeOptions
	// sub, when set, receives the replies and the stream for updates.
	sub *Subscription
	// ready, when set, gets nil once SUBSCRIBE_OK arrived, or the error that
	// ended the subscription before.
	ready chan<- error
}

// subscribe runs one subscription, feeding the peer's groups into
// req.track, until the peer finishes it (nil), it fails, ctx is done, or
// req.track has no consumer left (ErrCancel).
func (s *Session) subscribe(ctx context.Context, req subRequest) (err error) {
	readySent := false
	defer func() {
		if req.ready != nil && !readySent {
			req.ready <- err
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
		close(s.subsGone)
		s.subsGone = make(chan struct{})
		s.mu.Unlock()
	}()

	cs, err := s.openControl(lite.ControlSubscribe)
	if err != nil {
		return streamError(err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// When the last local consumer leaves, cancel upstream.
	if !s.spawn(func() {
		if req.track.Unused(ctx) == nil {
			cancel(ErrCancel)
		}
	}) {
		cs.reset(ErrCancel)
		return ErrClosed
	}
	stop := context.AfterFunc(ctx, func() { cs.reset(ErrCancel) })
	defer stop()

	o := req.opts
	msg := lite.Subscribe{ID: id, Broadcast: string(req.path), Track: req.track.Info().Name, Priority: o.Priority,
		Ordered: o.Ordered, MaxLatency: o.MaxLatency, StartGroup: optGroup(o.Start), EndGroup: optGroup(o.End)}
	if req.sub != nil {
		req.sub.attach(cs, cancel)
		req.sub.wmu.Lock()
	}
	err = cs.write(&msg, s.version)
	if req.sub != nil {
		req.sub.wmu.Unlock()
	}
	if err != nil {
		return s.subscribeFailed(ctx, err)
	}
	ok, _, err := lite.ReadSubscribeResponse(cs.r, s.version, maxControlMessage)
	if err != nil {
		return s.subscribeFailed(ctx, err)
	}
	if ok == nil {
		err := fmt.Errorf("%w: first subscribe reply is not SUBSCRIBE_OK", ErrProtocolViolation)
		s.fail(err)
		return err
	}
	if req.sub != nil {
		req.sub.setInfo(ok)
	}
	if req.ready != nil {
		req.ready <- nil
		readySent = true
	}
	for {
		ok, drop, err := lite.ReadSubscribeResponse(cs.r, s.version, maxControlMessage)
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
			req.sub.setInfo(ok)
		case drop != nil:
			s.log.Debug("groups dropped by publisher", "id", id, "start", drop.Start, "end", drop.End, "code", drop.Error)
			if req.sub != nil {
				req.sub.addDrop(drop)
			}
		}
	}
}

// waitSubscriptions waits until the session has no subscription left, ctx
// is done or the session ends.
func (s *Session) waitSubscriptions(ctx context.Context) {
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
	if isDecodeError(err) {
		err = decodeError("subscribe reply", err)
		s.fail(err)
		return err
	}
	return streamError(err)
}

// recvGroup receives one group stream into its subscription's track.
func (s *Session) recvGroup(st transport.ReceiveStream) {
	r := wire.NewReader(st)
	typ, err := r.ReadVarint()
	if err != nil {
		st.CancelRead(ErrorCode(ErrCancel))
		return
	}
	if typ != lite.DataGroup {
		st.CancelRead(ErrorCode(ErrUnexpectedStream))
		return
	}
	body, err := r.ReadMessage(maxControlMessage)
	if err != nil {
		st.CancelRead(ErrorCode(ErrCancel))
		return
	}
	var hdr lite.Group
	if err := hdr.DecodeBody(body, s.version); err != nil {
		st.CancelRead(ErrorCode(ErrDecode))
		s.fail(decodeError("GROUP", err))
		return
	}
	s.mu.Lock()
	sub := s.subs[hdr.SubscribeID]
	s.mu.Unlock()
	if sub == nil {
		// A late group of a subscription that already ended.
		st.CancelRead(ErrorCode(ErrCancel))
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
	if err := readFrames(r, group); err != nil {
		s.log.Debug("receiving group failed", "id", hdr.SubscribeID, "group", hdr.Sequence, "err", err)
		err = s.remoteEnd(err)
		if err == nil {
			err = ErrCancel
		}
		_ = group.Abort(err)
		st.CancelRead(ErrorCode(err))
		return
	}
	_ = group.Finish()
}

// readFrames copies frames from a group stream into group until the stream's FIN.
func readFrames(r *wire.Reader, group *GroupProducer) error {
	for {
		size, err := r.ReadVarint()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return streamError(err)
		}
		if err := readFrame(r, group, size); err != nil {
			return err
		}
	}
}

// readFrame copies the payload of one frame of the given size into group.
func readFrame(r *wire.Reader, group *GroupProducer, size uint64) error {
	if size > maxFrameSize {
		return fmt.Errorf("%w: frame of %d bytes", ErrBoundsExceeded, size)
	}
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
func readChunkedFrame(r *wire.Reader, group *GroupProducer, size uint64) error {
	frame, err := group.CreateFrame(size)
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
		remaining -= uint64(len(chunk))
	}
	return frame.Finish()
}

// readPayload fills p; a stream that ends first carried a short frame.
func readPayload(r *wire.Reader, p []byte) error {
	if err := r.ReadFull(p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: group stream ended inside a frame", ErrWrongSize)
		}
		return streamError(err)
	}
	return nil
}

// ConsumeBroadcast returns the peer's broadcast at path, announced or not: its
// tracks are subscribed from the peer on demand. A track that the peer does
// not have fails with ErrNotFound. The broadcast lives as long as the session.
func (s *Session) ConsumeBroadcast(path Path) *BroadcastConsumer {
	broadcast := NewBroadcast()
	dynamic := broadcast.Dynamic()
	dynamic.HandleFetch(s.fetcher(path))
	consumer := broadcast.Consume()
	run := func() {
		defer broadcast.Close()
		defer dynamic.Close()
		s.serveRequests(s.ctx, path, dynamic)
		// Later subscribers learn why the session ended.
		_ = broadcast.Abort(s.endCause())
	}
	if !s.spawn(run) {
		_ = broadcast.Abort(s.endCause())
		dynamic.Close()
		broadcast.Close()
	}
	return consumer
}
