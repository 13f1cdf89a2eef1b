package moq

import (
	"context"
	"io"
	"iter"
	"sync"
	"time"
)

// Group cache limits: once a group caches more than MaxGroupBytes of frame
// payload or more than MaxGroupFrames frames, its oldest frames are evicted
// and a consumer that has not read them yet gets ErrCacheFull.
const (
	MaxGroupBytes  = 32 << 20
	MaxGroupFrames = 1024
)

// groupState is the state shared by a group's producers and consumers.
type groupState struct {
	mu        sync.Mutex
	changed   notifier
	sequence  uint64
	created   time.Time
	frames    []*frameState // cached frames; frames[i] has index offset+i
	offset    int           // number of frames evicted from the front
	bytes     uint64        // payload size of the cached frames
	fin       bool
	err       error
	producers int
	// track is the track whose cache holds the group, and budget the
	// shared budget it counts in: both count the group's bytes. nil for a
	// group of no track and once evicted.
	track  *trackState
	budget *CacheBudget
}

// attach counts the group's bytes in t's cache, which now holds it. Called
// with t.mu held.
func (s *groupState) attach(t *trackState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.track, s.budget = t, t.cache.Budget
	s.countLocked(int64(s.bytes))
}

// detach stops counting the group's bytes in its track's cache, which
// evicted it. Called with the track's mutex held.
func (s *groupState) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countLocked(-int64(s.bytes))
	s.track, s.budget = nil, nil
}

// rebudget moves the group's bytes to budget. Called with the track's
// mutex held.
func (s *groupState) rebudget(budget *CacheBudget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.budget != nil {
		s.budget.used.Add(-int64(s.bytes))
	}
	s.budget = budget
	if budget != nil {
		budget.used.Add(int64(s.bytes))
	}
}

// countLocked adds n bytes to the caches that count the group.
func (s *groupState) countLocked(n int64) {
	if s.track != nil {
		s.track.bytes.Add(n)
	}
	if s.budget != nil {
		s.budget.used.Add(n)
	}
}

// appendFrame caches f, evicting the oldest frames beyond the cache limits,
// and returns the track whose cache now holds more bytes, if any.
func (s *groupState) appendFrame(f *frameState) (*trackState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.fin {
		return nil, ErrClosed
	}
	s.frames = append(s.frames, f)
	size := f.info.Size
	s.bytes += size
	for len(s.frames) > 0 && (s.bytes > MaxGroupBytes || len(s.frames) > MaxGroupFrames) {
		s.bytes -= s.frames[0].info.Size
		size -= s.frames[0].info.Size
		s.frames[0] = nil
		s.frames = s.frames[1:]
		s.offset++
	}
	s.countLocked(int64(size))
	s.changed.notify()
	return s.track, nil
}

// finish marks the end of the group.
func (s *groupState) finish() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.fin = true
	s.changed.notify()
	return nil
}

// abort fails the group and every incomplete frame it caches with err. A
// finished group stays readable. The first abort wins.
func (s *groupState) abort(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	for _, f := range s.frames {
		f.abort(err)
	}
	s.err = err
	s.changed.notify()
}

// releaseProducer drops one producer reference; the last one aborts an
// unfinished group with ErrDropped. Frames keep their own producers.
func (s *groupState) releaseProducer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.producers--
	if s.producers == 0 && !s.fin && s.err == nil {
		s.err = ErrDropped
		s.changed.notify()
	}
}

// frameAt waits for the frame with the given index: io.EOF past the end of
// a finished group, ErrCacheFull once it was evicted.
func (s *groupState) frameAt(ctx context.Context, index int) (*frameState, error) {
	for {
		s.mu.Lock()
		switch {
		case index < s.offset:
			s.mu.Unlock()
			return nil, ErrCacheFull
		case index-s.offset < len(s.frames):
			f := s.frames[index-s.offset]
			s.mu.Unlock()
			return f, nil
		case s.fin:
			s.mu.Unlock()
			return nil, io.EOF
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		ch := s.changed.wait()
		s.mu.Unlock()
		if err := block(ctx, ch); err != nil {
			return nil, err
		}
	}
}

// GroupProducer writes the frames of one group in order. Handles are
// reference counted: Clone returns another handle and Close releases one.
// When the last handle is released before Finish or Abort, the group fails
// with ErrDropped. Close is required for prompt cleanup: an unreachable open
// handle is only released whenever the garbage collector notices.
type GroupProducer struct {
	state *groupState
	h     handle
}

// NewGroup creates a group that belongs to no track, such as the answer to a
// fetch of one past group, and returns its first producer handle. Its
// Created time is now.
func NewGroup(sequence uint64) *GroupProducer {
	return wrapGroupProducer(&groupState{sequence: sequence, created: time.Now(), producers: 1})
}

// wrapGroupProducer returns a handle for a producer reference the caller
// already counted in s.producers.
func wrapGroupProducer(s *groupState) *GroupProducer {
	p := &GroupProducer{state: s}
	attach(&p.h, p, (*groupState).releaseProducer, s)
	return p
}

// Sequence returns the group's sequence number.
func (g *GroupProducer) Sequence() uint64 { return g.state.sequence }

// WriteFrame appends a frame holding payload. The payload is retained and
// shared with every consumer, not copied: the caller must not modify it
// afterwards.
func (g *GroupProducer) WriteFrame(payload []byte) error {
	return g.writeFrame(payload, FrameInfo{})
}

// WriteFrameAt is WriteFrame for a frame with a timestamp, in units of the
// track's Timescale.
func (g *GroupProducer) WriteFrameAt(payload []byte, timestamp uint64) error {
	return g.writeFrame(payload, FrameInfo{Timestamp: timestamp, HasTimestamp: true})
}

func (g *GroupProducer) writeFrame(payload []byte, info FrameInfo) error {
	if g.h.isClosed() {
		return ErrClosed
	}
	track, err := g.state.appendFrame(newCompleteFrame(payload, info))
	if track != nil {
		track.trim()
	}
	return err
}

// CreateFrame appends a frame of info.Size bytes, with info's timestamp,
// whose payload is written in chunks through the returned producer, which
// the caller must Close.
func (g *GroupProducer) CreateFrame(info FrameInfo) (*FrameProducer, error) {
	if g.h.isClosed() {
		return nil, ErrClosed
	}
	f := &frameState{info: info, producers: 1}
	track, err := g.state.appendFrame(f)
	if err != nil {
		return nil, err
	}
	if track != nil {
		track.trim()
	}
	return newFrameProducer(f), nil
}

// Finish marks the end of the group: consumers get the end once they have
// read every frame. Frames still being written stay writable. Finishing
// twice is harmless; finishing an aborted group returns the abort error.
func (g *GroupProducer) Finish() error {
	if g.h.isClosed() {
		return ErrClosed
	}
	return g.state.finish()
}

// Abort fails the group and its incomplete frames with err (ErrCancel when
// nil). The first abort wins; a finished group stays readable.
func (g *GroupProducer) Abort(err error) error {
	if g.h.isClosed() {
		return ErrClosed
	}
	if err == nil {
		err = ErrCancel
	}
	g.state.abort(err)
	return nil
}

// Consume returns a reader positioned at the group's first frame.
func (g *GroupProducer) Consume() *GroupConsumer { return &GroupConsumer{state: g.state} }

// Clone returns another handle to the same group.
func (g *GroupProducer) Clone() *GroupProducer {
	s := g.state
	s.mu.Lock()
	s.producers++
	s.mu.Unlock()
	return wrapGroupProducer(s)
}

// Close releases this handle. It is idempotent.
func (g *GroupProducer) Close() {
	if g.h.close() {
		g.state.releaseProducer()
	}
}

// FrameCount returns the number of frames written so far, evicted ones
// included.
func (g *GroupProducer) FrameCount() int {
	s := g.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset + len(s.frames)
}

// GroupConsumer reads the frames of a group in order. It is a plain view: it
// needs no Close, and Clone gives an independent reader at the same position.
type GroupConsumer struct {
	state *groupState
	index int // next frame
}

// Sequence returns the group's sequence number.
func (g *GroupConsumer) Sequence() uint64 { return g.state.sequence }

// Created returns when the track cached the group.
func (g *GroupConsumer) Created() time.Time { return g.state.created }

// NextFrame returns the next frame, or io.EOF at the end of the group. It
// fails with ErrCacheFull when that frame was already evicted, and with the
// abort error (ErrDropped when the producer went away) otherwise.
func (g *GroupConsumer) NextFrame(ctx context.Context) (*FrameConsumer, error) {
	f, err := g.state.frameAt(ctx, g.index)
	if err != nil {
		return nil, err
	}
	g.index++
	return &FrameConsumer{state: f}, nil
}

// ReadFrame returns the whole next frame, or io.EOF at the end of the group.
// The payload is shared, not copied: do not modify it.
func (g *GroupConsumer) ReadFrame(ctx context.Context) ([]byte, error) {
	f, err := g.state.frameAt(ctx, g.index)
	if err != nil {
		return nil, err
	}
	data, err := f.readFrom(ctx, 0)
	if err != nil {
		return nil, err
	}
	g.index++
	return data, nil
}

// GetFrame returns the frame with the given index, waiting for it if needed.
// It fails with ErrNotFound when the group finished with fewer frames.
func (g *GroupConsumer) GetFrame(ctx context.Context, index int) (*FrameConsumer, error) {
	if index < 0 {
		return nil, ErrBoundsExceeded
	}
	f, err := g.state.frameAt(ctx, index)
	if err == io.EOF {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &FrameConsumer{state: f}, nil
}

// Frames iterates over the payloads of the remaining frames, as ReadFrame
// returns them, until the end of the group. An error other than the end is
// yielded once, with a nil payload, and ends the iteration.
func (g *GroupConsumer) Frames(ctx context.Context) iter.Seq2[[]byte, error] {
	return each(ctx, g.ReadFrame)
}

// Finished waits for the end of the group and returns its number of frames.
func (g *GroupConsumer) Finished(ctx context.Context) (int, error) {
	s := g.state
	for {
		s.mu.Lock()
		switch {
		case s.fin:
			n := s.offset + len(s.frames)
			s.mu.Unlock()
			return n, nil
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		ch := s.changed.wait()
		s.mu.Unlock()
		if err := block(ctx, ch); err != nil {
			return 0, err
		}
	}
}

// Clone returns an independent reader at the same position.
func (g *GroupConsumer) Clone() *GroupConsumer {
	c := *g
	return &c
}
