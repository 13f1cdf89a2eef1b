package lite

import (
	"context"
	"errors"
	"io"
	"slices"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/shrink"
	"github.com/moqgo/moq/internal/wire"
	"github.com/moqgo/moq/transport"
)

// This file is the publisher half of a session: it answers the peer's
// announcement interest from engine.Config.Publish and its fetches; its
// subscriptions are served in session_serve.go.

// writeCoalesce is how many bytes of small frames are gathered into one write;
// larger payloads are written straight from the shared frame buffer.
const writeCoalesce = 16 << 10

// serveAnnounce answers one ANNOUNCE_INTEREST with the broadcasts under its
// prefix, then with every change until the peer closes the stream.
func (s *Session) serveAnnounce(cs *controlStream, interest *AnnounceInterest) {
	if !s.take(&s.active.interests, s.limits.MaxAnnounceInterests) {
		s.refuse(cs, "announce interest", s.limits.MaxAnnounceInterests)
		return
	}
	defer s.give(&s.active.interests)
	prefix := moq.NewPath(interest.Prefix)

	var anns *moq.Announcements
	if s.publish != nil {
		view, err := s.publish.ConsumeOnly(prefix)
		if err != nil {
			s.log.Debug("announce interest refused", "prefix", prefix, "err", err)
			cs.reset(moq.ErrUnauthorized)
			return
		}
		anns = view.Announcements()
		defer anns.Close()
	}

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// The subscriber sends nothing more; its end of the stream ends interest.
	if !s.spawn(func() {
		_ = discard(cs.st)
		cancel()
	}) {
		cs.reset(moq.ErrCancel)
		return
	}
	stop := context.AfterFunc(ctx, func() {
		if s.ctx.Err() != nil {
			cs.reset(moq.ErrCancel)
		}
	})
	defer stop()

	a := announcer{s: s, cs: cs, prefix: prefix, exclude: interest.ExcludeHop, sent: make(map[string][]uint64)}
	if err := a.run(ctx, anns); err != nil && ctx.Err() == nil {
		s.log.Debug("announcing failed", "prefix", prefix, "err", err)
		cs.reset(err)
		return
	}
	cs.finish()
}

// announcer writes the announcements of one announce stream.
type announcer struct {
	s       *Session
	cs      *controlStream
	prefix  moq.Path
	exclude uint64 // the peer's exclude_hop; 0 for none
	// sent maps the suffixes announced active to the hops they were sent
	// with; broadcasts left out (loops) are not in it.
	sent     map[string][]uint64
	sentPeak int // see shrink.Map
}

// unsent forgets a suffix no longer announced.
func (a *announcer) unsent(name string) {
	delete(a.sent, name)
	a.sent = shrink.Map(a.sent, &a.sentPeak)
}

func (a *announcer) suffix(p moq.Path) string {
	rest, _ := p.StripPrefix(a.prefix)
	return string(rest)
}

// hops returns the hop list to announce b with, and false when b must not be
// announced on this stream: it came through the peer (exclude_hop), through
// this node (a loop), or through too many relays to add one more.
func (a *announcer) hops(b *moq.BroadcastConsumer) ([]uint64, bool) {
	hops := b.Hops()
	switch {
	case a.exclude != 0 && slices.Contains(hops, a.exclude):
		return nil, false
	case a.s.nodeID != 0 && slices.Contains(hops, a.s.nodeID):
		return nil, false
	case a.s.nodeID != 0 && len(hops) >= MaxHops:
		return nil, false
	}
	if a.s.nodeID != 0 {
		hops = append(hops, a.s.nodeID)
	}
	return hops, true
}

func (a *announcer) run(ctx context.Context, anns *moq.Announcements) error {
	s := a.s
	if s.version.UsesSetup() {
		// lite-01/02 open with the current set in one message; they carry
		// no hops.
		var current []string
		if anns != nil {
			for {
				an, ok := anns.TryNext()
				if !ok {
					break
				}
				name := a.suffix(an.Path)
				current = slices.DeleteFunc(current, func(c string) bool { return c == name })
				if an.Broadcast != nil {
					current = append(current, name)
				}
			}
		}
		for _, name := range current {
			a.sent[name] = nil
		}
		if err := a.write(ctx, &AnnounceInit{Suffixes: current}); err != nil {
			return err
		}
	}
	if anns == nil {
		// Nothing is published: keep the stream open until the peer leaves.
		<-ctx.Done()
		return nil
	}
	for an, err := range anns.All(ctx) {
		if err != nil {
			return nil
		}
		if err := a.announce(ctx, an); err != nil {
			return err
		}
	}
	return nil
}

// announce forwards one change of the origin.
func (a *announcer) announce(ctx context.Context, an moq.Announce) error {
	name := a.suffix(an.Path)
	if an.Broadcast == nil {
		hops, ok := a.sent[name]
		if !ok {
			return nil // never announced here
		}
		a.unsent(name)
		return a.write(ctx, &Announce{Active: false, Suffix: name, Hops: hops})
	}
	if prev, ok := a.sent[name]; ok {
		// A replacement without an unannouncement first: end the old one.
		a.unsent(name)
		if err := a.write(ctx, &Announce{Active: false, Suffix: name, Hops: prev}); err != nil {
			return err
		}
	}
	hops, ok := a.hops(an.Broadcast)
	if !ok {
		a.s.log.Debug("not announcing back", "broadcast", an.Path, "hops", an.Broadcast.Hops(), "exclude", a.exclude)
		return nil
	}
	a.sent[name] = hops
	return a.write(ctx, &Announce{Active: true, Suffix: name, Hops: hops})
}

func (a *announcer) write(ctx context.Context, msg Message) error {
	if err := a.cs.write(ctx, msg, a.s.version); err != nil {
		return streamError(err)
	}
	return nil
}

// serveFetch answers one FETCH with the frames of the group, straight on the
// fetch stream, then FIN; a group it cannot find resets the stream.
func (s *Session) serveFetch(cs *controlStream, msg *Fetch) {
	if !s.take(&s.active.fetches, s.limits.MaxFetches) {
		s.refuse(cs, "fetch", s.limits.MaxFetches)
		return
	}
	defer s.give(&s.active.fetches)
	log := s.log.With("broadcast", msg.Broadcast, "track", msg.Track, "group", msg.Group)
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	// The subscriber sends nothing more; a reset of its side cancels.
	if !s.spawn(func() {
		if err := discard(cs.st); err != nil {
			cancel(streamError(err))
		}
	}) {
		cs.reset(moq.ErrCancel)
		return
	}

	broadcast, err := s.lookup(msg.Broadcast)
	if err != nil {
		log.Debug("fetch: no broadcast", "err", err)
		cs.reset(err)
		return
	}
	group, err := broadcast.FetchGroup(ctx, msg.Track, msg.Group, msg.Priority)
	if err != nil {
		log.Debug("fetch refused", "err", err)
		cs.reset(err)
		return
	}
	item := s.prio.Insert(msg.Priority, false, msg.Group, cs.st)
	defer item.Remove()
	stop := context.AfterFunc(ctx, func() { cs.reset(moq.ErrCancel) })
	defer stop()
	if err := s.writeFrames(ctx, cs.st, make([]byte, 0, 256), group); err != nil {
		if ctx.Err() == nil {
			log.Debug("fetch failed", "err", err)
			cs.reset(err)
		}
		return
	}
	_ = cs.st.Close()
	log.Debug("fetch served")
}

// lookup finds a broadcast of Config.Publish by its path on the wire. A
// session that publishes nothing has none: moq.ErrNotFound.
func (s *Session) lookup(path string) (*moq.BroadcastConsumer, error) {
	if s.publish == nil {
		return nil, moq.ErrNotFound
	}
	b, err := s.publish.ConsumeBroadcast(moq.NewPath(path))
	if errors.Is(err, moq.ErrUnauthorized) {
		// Outside the session's scope is, to the peer, not there.
		return nil, moq.ErrNotFound
	}
	return b, err
}

// writeGroup writes a group stream: its header, then its frames.
func (s *Session) writeGroup(ctx context.Context, st transport.SendStream, id uint64, group *moq.GroupConsumer) error {
	buf, err := AppendGroupHeader(make([]byte, 0, 256), &Group{SubscribeID: id, Sequence: group.Sequence()}, s.version)
	if err != nil {
		return err
	}
	return s.writeFrames(ctx, st, buf, group)
}

// writeFrames writes buf, then every frame of group as a size and a
// payload, until the group ends, and counts the group and its bytes.
func (s *Session) writeFrames(ctx context.Context, st transport.SendStream, buf []byte, group *moq.GroupConsumer) error {
	for {
		frame, err := group.NextFrame(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		s.stats.BytesOut.Add(frame.Size())
		buf, err = AppendFrameHeader(buf, int(min(frame.Size(), wire.MaxMessageSize+1)))
		if err != nil {
			return err
		}
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
		if _, err := st.Write(buf); err != nil {
			return err
		}
	}
	s.stats.GroupsOut.Add(1)
	return nil
}

// controlFailed handles a failure to read a control stream's opening
// message: a malformed one ends the session, an oversized one the stream.
func (s *Session) controlFailed(cs *controlStream, err error) {
	switch {
	case errors.Is(err, moq.ErrDecode):
		cs.reset(err)
		s.fail(err)
	case errors.Is(err, wire.ErrTooLarge):
		s.log.Warn("refusing an oversized request", "err", err)
		cs.reset(moq.ErrBoundsExceeded)
	default:
		cs.reset(moq.ErrCancel)
	}
}
