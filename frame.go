package moq

import (
	"context"
	"io"
	"sync"
)

// FrameInfo describes a frame: its payload size and, optionally, its media
// timestamp.
type FrameInfo struct {
	// Size is the payload size in bytes.
	Size uint64
	// Timestamp is the frame's presentation time in units of its track's
	// Timescale; it is meaningful only when HasTimestamp is set. Protocols
	// that carry timestamps (moq-lite-05 on every frame, IETF objects with a
	// timestamp property) set it on received frames; older moq-lite versions
	// carry none.
	Timestamp    uint64
	HasTimestamp bool
}

// frameState is the state shared by a frame's producer and consumers.
type frameState struct {
	mu        sync.Mutex
	changed   notifier
	info      FrameInfo
	written   uint64
	chunks    [][]byte
	first     [1][]byte // backing for chunks when there is a single chunk
	whole     []byte    // chunks concatenated once, for ReadAll of a multi-chunk frame
	err       error     // abort error; ignored once the frame is complete
	producers int
}

// newCompleteFrame returns a frame holding payload, already complete.
func newCompleteFrame(payload []byte, info FrameInfo) *frameState {
	info.Size = uint64(len(payload))
	s := &frameState{info: info, written: info.Size}
	s.appendChunk(payload)
	return s
}

// appendChunk stores chunk; the first one needs no extra allocation.
func (s *frameState) appendChunk(chunk []byte) {
	if s.chunks == nil {
		s.first[0] = chunk
		s.chunks = s.first[:1:1]
		return
	}
	s.chunks = append(s.chunks, chunk)
}

// complete reports whether every byte has been written. Called with mu held.
func (s *frameState) complete() bool { return s.written == s.info.Size }

// abort fails an incomplete frame with err; a complete frame is unaffected.
func (s *frameState) abort(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.complete() || s.err != nil {
		return
	}
	s.err = err
	s.changed.notify()
}

// releaseProducer drops one producer reference; the last one aborts an
// incomplete frame with ErrDropped.
func (s *frameState) releaseProducer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.producers--
	if s.producers == 0 && !s.complete() && s.err == nil {
		s.err = ErrDropped
		s.changed.notify()
	}
}

// FrameProducer writes the payload of one frame, whose size is fixed up
// front, in one or more chunks. Close releases it; a frame whose producer is
// released before every byte was written fails with ErrDropped. Close is
// required for prompt cleanup: an unreachable open handle is only released
// whenever the garbage collector notices.
type FrameProducer struct {
	state *frameState
	h     handle
}

func newFrameProducer(s *frameState) *FrameProducer {
	p := &FrameProducer{state: s}
	attach(&p.h, p, (*frameState).releaseProducer, s)
	return p
}

// Size returns the frame's size in bytes.
func (f *FrameProducer) Size() uint64 { return f.state.info.Size }

// Info returns the frame's size and timestamp.
func (f *FrameProducer) Info() FrameInfo { return f.state.info }

// Write appends chunk to the frame. The chunk is retained and shared with
// every consumer, not copied: the caller must not modify it afterwards.
// It fails with ErrWrongSize if the frame would exceed its size.
func (f *FrameProducer) Write(chunk []byte) error {
	if f.h.isClosed() {
		return ErrClosed
	}
	s := f.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if uint64(len(chunk)) > s.info.Size-s.written {
		return ErrWrongSize
	}
	if len(chunk) == 0 {
		return nil
	}
	s.appendChunk(chunk)
	s.written += uint64(len(chunk))
	s.changed.notify()
	return nil
}

// Finish checks that exactly Size bytes were written (ErrWrongSize
// otherwise). The frame is complete, for consumers, as soon as its last byte
// is written.
func (f *FrameProducer) Finish() error {
	if f.h.isClosed() {
		return ErrClosed
	}
	s := f.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if !s.complete() {
		return ErrWrongSize
	}
	return nil
}

// Abort fails the frame with err (ErrCancel when nil); consumers waiting for
// more data get err. A complete frame stays readable.
func (f *FrameProducer) Abort(err error) error {
	if f.h.isClosed() {
		return ErrClosed
	}
	if err == nil {
		err = ErrCancel
	}
	f.state.abort(err)
	return nil
}

// Close releases this handle. It is idempotent.
func (f *FrameProducer) Close() {
	if f.h.close() {
		f.state.releaseProducer()
	}
}

// Consume returns a reader positioned at the start of the frame.
func (f *FrameProducer) Consume() *FrameConsumer { return &FrameConsumer{state: f.state} }

// FrameConsumer reads a frame's payload. It is a plain view: it needs no
// Close, and each FrameConsumer has its own position.
type FrameConsumer struct {
	state *frameState
	index int // next chunk
}

// Size returns the frame's size in bytes.
func (f *FrameConsumer) Size() uint64 { return f.state.info.Size }

// Info returns the frame's size and timestamp.
func (f *FrameConsumer) Info() FrameInfo { return f.state.info }

// ReadChunk returns the next chunk as written by the producer (shared, not
// copied: do not modify it), or io.EOF after the last one.
func (f *FrameConsumer) ReadChunk(ctx context.Context) ([]byte, error) {
	s := f.state
	for {
		s.mu.Lock()
		switch {
		case f.index < len(s.chunks):
			chunk := s.chunks[f.index]
			s.mu.Unlock()
			f.index++
			return chunk, nil
		case s.complete():
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

// ReadAll waits for the rest of the frame and returns it. A frame written in
// one chunk is returned as that chunk; a multi-chunk frame read from the
// start is concatenated once and the result is shared by every consumer. The
// result must not be modified.
func (f *FrameConsumer) ReadAll(ctx context.Context) ([]byte, error) {
	data, err := f.state.readFrom(ctx, f.index)
	if err != nil {
		return nil, err
	}
	f.state.mu.Lock()
	f.index = len(f.state.chunks)
	f.state.mu.Unlock()
	return data, nil
}

// readFrom waits until the frame is complete and returns its bytes from
// chunk index on.
func (s *frameState) readFrom(ctx context.Context, index int) ([]byte, error) {
	for {
		s.mu.Lock()
		if s.complete() {
			data := s.joinLocked(index)
			s.mu.Unlock()
			return data, nil
		}
		if s.err != nil {
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

// joinLocked returns the complete frame's bytes from chunk index on.
func (s *frameState) joinLocked(index int) []byte {
	rest := s.chunks[min(index, len(s.chunks)):]
	switch {
	case len(rest) == 0:
		return []byte{}
	case len(rest) == 1:
		return rest[0]
	case index == 0 && s.whole != nil:
		return s.whole
	}
	var n int
	for _, c := range rest {
		n += len(c)
	}
	buf := make([]byte, 0, n)
	for _, c := range rest {
		buf = append(buf, c...)
	}
	if index == 0 {
		s.whole = buf
	}
	return buf
}
