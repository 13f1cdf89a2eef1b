package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
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
		rb.end(endErr)
	}
	switch {
	case err == nil:
		cs.finish()
	case errors.Is(err, ErrDecode) || errors.Is(err, ErrProtocolViolation):
		s.fail(err)
	}
}

func (s *Session) readAnnounces(cs *controlStream, prefix Path, active map[Path]*remoteBroadcast) error {
	if err := cs.write(&lite.AnnounceInterest{Prefix: string(prefix)}, s.version); err != nil {
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
			if err := s.announced(active, prefix.Join(NewPath(suffix))); err != nil {
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
			if err := s.announced(active, path); err != nil {
				return err
			}
			continue
		}
		rb, ok := active[path]
		if !ok {
			return fmt.Errorf("%w: ended broadcast %q was never announced", ErrProtocolViolation, path)
		}
		delete(active, path)
		rb.end(nil)
	}
}

// announced publishes a broadcast the peer announced, serving its tracks on demand.
func (s *Session) announced(active map[Path]*remoteBroadcast, path Path) error {
	if _, dup := active[path]; dup {
		return fmt.Errorf("%w: broadcast %q announced twice", ErrProtocolViolation, path)
	}
	broadcast := NewBroadcast()
	// Requests must be possible before anyone can see the broadcast.
	dynamic := broadcast.Dynamic()
	if !s.consume.PublishBroadcast(path, broadcast.Consume()) {
		s.log.Debug("announced broadcast outside the allowed prefixes", "broadcast", path)
		dynamic.Close()
		broadcast.Close()
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	active[path] = &remoteBroadcast{broadcast: broadcast, dynamic: dynamic, cancel: cancel}
	s.log.Debug("broadcast announced", "broadcast", path)
	s.spawn(func() {
		for {
			track, err := dynamic.RequestedTrack(ctx)
			if err != nil {
				return
			}
			s.spawn(func() { s.runSubscription(path, track) })
		}
	})
	return nil
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

// subscription is one of our subscriptions to the peer.
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
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	sub := newSubscription(track)
	s.subs[id] = sub
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}()

	err := s.subscribe(id, path, track)
	if err == nil {
		sub.waitQuiet(s.ctx)
	}
	if err = s.remoteEnd(err); err != nil {
		s.log.Debug("subscription ended", "id", id, "broadcast", path, "track", track.Info().Name, "err", err)
		_ = track.Abort(err)
		return
	}
	_ = track.Finish()
}

func (s *Session) subscribe(id uint64, path Path, track *TrackProducer) error {
	cs, err := s.openControl(lite.ControlSubscribe)
	if err != nil {
		return streamError(err)
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	// When the last local consumer leaves, cancel upstream.
	s.spawn(func() {
		if track.Unused(ctx) == nil {
			cancel(ErrCancel)
		}
	})
	stop := context.AfterFunc(ctx, func() { cs.reset(ErrCancel) })
	defer stop()

	info := track.Info()
	msg := lite.Subscribe{ID: id, Broadcast: string(path), Track: info.Name, Priority: info.Priority}
	if err := cs.write(&msg, s.version); err != nil {
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
	for {
		_, drop, err := lite.ReadSubscribeResponse(cs.r, s.version, maxControlMessage)
		if err != nil {
			if errors.Is(err, io.EOF) {
				cs.finish()
				return nil
			}
			return s.subscribeFailed(ctx, err)
		}
		if drop != nil {
			s.log.Debug("groups dropped by publisher", "id", id, "start", drop.Start, "end", drop.End, "code", drop.Error)
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
		if size > maxFrameSize {
			return fmt.Errorf("%w: frame of %d bytes", ErrBoundsExceeded, size)
		}
		if size <= frameChunk {
			payload := make([]byte, size)
			if err := readPayload(r, payload); err != nil {
				return err
			}
			if err := group.WriteFrame(payload); err != nil {
				return err
			}
			continue
		}
		if err := readChunkedFrame(r, group, size); err != nil {
			return err
		}
	}
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
	consumer := broadcast.Consume()
	s.spawn(func() {
		defer broadcast.Close()
		defer dynamic.Close()
		for {
			track, err := dynamic.RequestedTrack(s.ctx)
			if err != nil {
				// Later subscribers learn why the session ended.
				_ = broadcast.Abort(context.Cause(s.ctx))
				return
			}
			s.spawn(func() { s.runSubscription(path, track) })
		}
	})
	return consumer
}
