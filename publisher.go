package moq

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// This file is the publisher half of a session: it answers the peer's
// announcement interest from Config.Publish and serves its subscriptions.

// writeCoalesce is how many bytes of small frames are gathered into one write;
// larger payloads are written straight from the shared frame buffer.
const writeCoalesce = 16 << 10

// serveAnnounce answers one ANNOUNCE_INTEREST with the broadcasts under its
// prefix, then with every change until the peer closes the stream.
func (s *Session) serveAnnounce(cs *controlStream) {
	var interest lite.AnnounceInterest
	if err := cs.readMessage(&interest, s.version, "ANNOUNCE_INTEREST"); err != nil {
		s.controlFailed(cs, err)
		return
	}
	prefix := NewPath(interest.Prefix)

	var origin *OriginConsumer
	if s.publish != nil {
		origin = s.publish.ConsumeOnly(prefix)
		if origin == nil {
			s.log.Debug("announce interest refused", "prefix", prefix)
			cs.reset(ErrUnauthorized)
			return
		}
		defer origin.Close()
	}

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// The subscriber sends nothing more; its end of the stream ends interest.
	s.spawn(func() {
		_, _ = io.Copy(io.Discard, cs.st)
		cancel()
	})
	stop := context.AfterFunc(ctx, func() {
		if s.ctx.Err() != nil {
			cs.reset(ErrCancel)
		}
	})
	defer stop()

	if err := s.announceAll(ctx, cs, origin, prefix); err != nil && ctx.Err() == nil {
		s.log.Debug("announcing failed", "prefix", prefix, "err", err)
		cs.reset(err)
		return
	}
	cs.finish()
}

func (s *Session) announceAll(ctx context.Context, cs *controlStream, origin *OriginConsumer, prefix Path) error {
	suffix := func(p Path) string {
		rest, _ := p.StripPrefix(prefix)
		return string(rest)
	}
	if hasAnnounceInit(s.version) {
		// lite-01/02 open with the current set in one message.
		var current []string
		if origin != nil {
			for {
				a, ok := origin.TryAnnounced()
				if !ok {
					break
				}
				name := suffix(a.Path)
				if a.Broadcast != nil {
					current = append(current, name)
				} else {
					current = removeString(current, name)
				}
			}
		}
		if err := cs.write(&lite.AnnounceInit{Suffixes: current}, s.version); err != nil {
			return streamError(err)
		}
	}
	if origin == nil {
		// Nothing is published: keep the stream open until the peer leaves.
		<-ctx.Done()
		return nil
	}
	for {
		a, err := origin.Announced(ctx)
		if err != nil {
			return nil
		}
		msg := lite.Announce{Active: a.Broadcast != nil, Suffix: suffix(a.Path)}
		if err := cs.write(&msg, s.version); err != nil {
			return streamError(err)
		}
	}
}

func removeString(list []string, s string) []string {
	for i, v := range list {
		if v == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// served is one subscription of the peer that this session serves.
type served struct {
	id    uint64
	track *TrackConsumer
	done  chan struct{} // closed when serving ends

	mu       sync.Mutex
	priority uint8
	streams  map[*priorityItem]struct{} // open group streams
}

func (sv *served) setPriority(p uint8) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.priority = p
	for it := range sv.streams {
		it.setTrackPriority(p)
	}
}

// serveSubscribe answers one SUBSCRIBE: SUBSCRIBE_OK, then one stream per
// group from the newest group on, until the track ends or the peer cancels.
func (s *Session) serveSubscribe(cs *controlStream) {
	var msg lite.Subscribe
	if err := cs.readMessage(&msg, s.version, "SUBSCRIBE"); err != nil {
		s.controlFailed(cs, err)
		return
	}
	log := s.log.With("id", msg.ID, "broadcast", msg.Broadcast, "track", msg.Track)

	var broadcast *BroadcastConsumer
	if s.publish != nil {
		broadcast = s.publish.ConsumeBroadcast(NewPath(msg.Broadcast))
	}
	if broadcast == nil {
		log.Debug("subscribe: broadcast not found")
		cs.reset(ErrNotFound)
		return
	}
	track, err := broadcast.SubscribeTrack(Track{Name: msg.Track, Priority: msg.Priority})
	if err != nil {
		log.Debug("subscribe refused", "err", err)
		cs.reset(err)
		return
	}
	defer track.Close()

	sv := &served{id: msg.ID, track: track, done: make(chan struct{}), priority: msg.Priority, streams: make(map[*priorityItem]struct{})}
	s.mu.Lock()
	s.served[sv] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.served, sv)
		s.mu.Unlock()
		close(sv.done)
	}()

	ok := lite.SubscribeOk{Priority: msg.Priority, Ordered: msg.Ordered, MaxLatency: msg.MaxLatency, StartGroup: msg.StartGroup, EndGroup: msg.EndGroup}
	b, err := lite.AppendSubscribeResponse(cs.buf[:0], &ok, nil, s.version)
	if err == nil {
		err = cs.flush(b)
	}
	if err != nil {
		cs.reset(ErrCancel)
		return
	}

	switch {
	case msg.StartGroup.Valid:
		track.StartAt(msg.StartGroup.Seq)
	default:
		// New subscriptions start at the newest group.
		if latest, ok := track.Latest(); ok {
			track.StartAt(latest)
		}
	}

	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	peerDone := make(chan struct{})
	s.spawn(func() {
		defer close(peerDone)
		s.readSubscribeUpdates(cs, sv, cancel)
	})

	err = s.serveTrack(ctx, sv)
	switch {
	case err == nil:
		// Give the peer time to read the last groups before the end, then
		// wait for it to close its side in answer, so that a session closing
		// right after does not cut the end off.
		waitFor(ctx.Done(), trackEndGrace)
		_ = cs.st.Close()
		waitFor(peerDone, peerCloseTimeout)
		cs.st.CancelRead(ErrorCode(ErrCancel))
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
// the subscription, which cancels it.
func (s *Session) readSubscribeUpdates(cs *controlStream, sv *served, cancel context.CancelCauseFunc) {
	for {
		var update lite.SubscribeUpdate
		err := cs.readMessage(&update, s.version, "SUBSCRIBE_UPDATE")
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				cancel(errUnsubscribed)
			case errors.Is(err, ErrDecode):
				cancel(err)
				s.fail(err)
			default:
				cancel(streamError(err))
			}
			return
		}
		sv.setPriority(update.Priority)
	}
}

// serveTrack writes the track's groups until it finishes (nil) or fails.
// At most maxGroupsInFlight group streams are open at once; later groups wait
// in the track's cache.
func (s *Session) serveTrack(ctx context.Context, sv *served) error {
	groupCtx, cancelGroups := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancelGroups()
		wg.Wait()
	}()
	slots := make(chan struct{}, maxGroupsInFlight)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		group, err := sv.track.NextGroup(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if group == nil {
			// Finished: the track's end must not overtake its groups.
			wg.Wait()
			return context.Cause(ctx)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.serveGroup(groupCtx, sv, group)
		}()
	}
}

// serveGroup writes one group on its own unidirectional stream.
func (s *Session) serveGroup(ctx context.Context, sv *served, group *GroupConsumer) {
	st, err := s.conn.OpenUniStream(ctx)
	if err != nil {
		return
	}
	sv.mu.Lock()
	prio := s.prio.insert(sv.priority, group.Sequence(), st)
	sv.streams[prio] = struct{}{}
	sv.mu.Unlock()
	defer func() {
		sv.mu.Lock()
		delete(sv.streams, prio)
		sv.mu.Unlock()
		prio.remove()
	}()
	stop := context.AfterFunc(ctx, func() { st.CancelWrite(ErrorCode(ErrCancel)) })
	defer stop()

	if err := s.writeGroup(ctx, st, sv.id, group); err != nil {
		if ctx.Err() == nil && !isStreamStopped(err) {
			s.log.Debug("group failed", "id", sv.id, "group", group.Sequence(), "err", err)
			st.CancelWrite(ErrorCode(err))
		}
		return
	}
	_ = st.Close()
}

func (s *Session) writeGroup(ctx context.Context, st transport.SendStream, id uint64, group *GroupConsumer) error {
	buf := wire.AppendVarint(make([]byte, 0, 256), lite.DataGroup)
	buf, err := lite.AppendMessage(buf, &lite.Group{SubscribeID: id, Sequence: group.Sequence()}, s.version)
	if err != nil {
		return err
	}
	for {
		frame, err := group.NextFrame(ctx)
		if err != nil {
			return err
		}
		if frame == nil {
			break
		}
		buf = wire.AppendVarint(buf, frame.Size())
		for {
			chunk, err := frame.ReadChunk(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if len(buf)+len(chunk) <= writeCoalesce {
				buf = append(buf, chunk...)
				continue
			}
			if len(buf) > 0 {
				if _, err := st.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
			if _, err := st.Write(chunk); err != nil {
				return err
			}
		}
		// Flush every frame at once: latency matters more than packing.
		if len(buf) > 0 {
			if _, err := st.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		_, err = st.Write(buf)
	}
	return err
}

// isStreamStopped reports whether a write failed because the peer stopped
// reading (it no longer wants that group), which is not an error worth a reset.
func isStreamStopped(err error) bool {
	var se *transport.StreamError
	return errors.As(err, &se) && se.Remote
}

// controlFailed handles a failure to read a control stream's opening message.
func (s *Session) controlFailed(cs *controlStream, err error) {
	if errors.Is(err, ErrDecode) {
		cs.reset(err)
		s.fail(err)
		return
	}
	cs.reset(ErrCancel)
}
