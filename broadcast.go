package moq

import (
	"context"
	"slices"
	"strconv"
	"sync"
)

// broadcastState is the state shared by a broadcast's producers, dynamic
// handlers and consumers. It references tracks without owning them.
type broadcastState struct {
	mu      sync.Mutex
	changed notifier
	tracks  map[string]*trackState
	// requests are requested tracks not yet handed to a dynamic handler;
	// each holds one producer reference on behalf of the broadcast.
	requests  []*trackState
	dynamic   int // open BroadcastDynamic handles
	producers int // open BroadcastProducer and BroadcastDynamic handles
	err       error
	onEnd     []func() // run once, without locks, when the broadcast ends
	// hops lists the ids of the relays the broadcast came through.
	hops []uint64
	// fetch answers fetches the cache cannot, while a dynamic handler is open.
	fetch FetchHandler
	// serve, when set, takes requested tracks instead of the requests queue.
	serve RequestHandler
	// cache is the cache policy of the tracks created in the broadcast or
	// requested from it.
	cache CachePolicy
}

// endLocked records err as the reason the broadcast ended and returns the
// hooks the caller must run once the lock is released.
func (s *broadcastState) endLocked(err error) []func() {
	if s.err != nil {
		return nil
	}
	s.err = err
	s.changed.notify()
	hooks := s.onEnd
	s.onEnd = nil
	return hooks
}

func runHooks(hooks []func()) {
	for _, h := range hooks {
		h()
	}
}

// addEndHook registers hook to run when the broadcast ends; it returns false,
// without registering, when the broadcast already ended.
func (s *broadcastState) addEndHook(hook func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.onEnd = append(s.onEnd, hook)
	return true
}

// dropRequestsLocked fails every pending request with err and forgets it.
func (s *broadcastState) dropRequestsLocked(err error) {
	for _, t := range s.requests {
		if s.tracks[t.info.Name] == t {
			delete(s.tracks, t.info.Name)
		}
		t.abort(err)
		t.releaseProducer()
	}
	clear(s.requests)
	s.requests = s.requests[:0]
}

// abort ends the broadcast with err, aborting its tracks and pending
// requests. The first end wins.
func (s *broadcastState) abort(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.dropRequestsLocked(err)
	for _, t := range s.tracks {
		t.abort(err)
	}
	hooks := s.endLocked(err)
	s.mu.Unlock()
	runHooks(hooks)
}

// releaseProducer drops one producer reference; the last one ends the
// broadcast with ErrDropped. Its tracks keep their own producers.
func (s *broadcastState) releaseProducer() {
	s.mu.Lock()
	s.producers--
	var hooks []func()
	if s.producers == 0 {
		hooks = s.endLocked(ErrDropped)
	}
	s.mu.Unlock()
	runHooks(hooks)
}

// releaseDynamic drops a BroadcastDynamic handle; once none is left,
// pending requests fail with ErrNotFound.
func (s *broadcastState) releaseDynamic() {
	s.mu.Lock()
	s.dynamic--
	if s.dynamic == 0 {
		s.dropRequestsLocked(ErrNotFound)
		s.fetch = nil
		s.serve = nil
	}
	s.mu.Unlock()
	s.releaseProducer()
}

// forget removes a requested track from the lookup once its last consumer
// is gone, so the next subscription makes a fresh request. A request still
// pending is withdrawn.
func (s *broadcastState) forget(t *trackState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tracks[t.info.Name] != t {
		return
	}
	t.mu.Lock()
	unused := t.consumers == 0
	t.mu.Unlock()
	if !unused {
		return
	}
	delete(s.tracks, t.info.Name)
	if i := slices.Index(s.requests, t); i >= 0 {
		s.requests = slices.Delete(s.requests, i, i+1)
		t.abort(ErrCancel)
		t.releaseProducer()
	}
}

// liveTrackLocked returns the open track with that name, forgetting a stale
// entry.
func (s *broadcastState) liveTrackLocked(name string) *trackState {
	t, ok := s.tracks[name]
	if !ok {
		return nil
	}
	if t.alive() {
		return t
	}
	delete(s.tracks, name)
	return nil
}

// BroadcastProducer publishes a set of tracks. Handles are reference
// counted: Clone returns another handle and Close releases one; when the
// last handle (BroadcastDynamic handles included) is released, the broadcast
// ends with ErrDropped. Close is required for prompt cleanup: an unreachable
// open handle is only released whenever the garbage collector notices.
type BroadcastProducer struct {
	state *broadcastState
	h     handle
}

// NewBroadcast creates an empty broadcast and returns its first producer
// handle.
func NewBroadcast() *BroadcastProducer {
	s := &broadcastState{tracks: make(map[string]*trackState), producers: 1}
	return wrapBroadcastProducer(s)
}

func wrapBroadcastProducer(s *broadcastState) *BroadcastProducer {
	p := &BroadcastProducer{state: s}
	attach(&p.h, p, (*broadcastState).releaseProducer, s)
	return p
}

// usableLocked returns why the broadcast cannot be changed, if it cannot.
func (b *BroadcastProducer) usableLocked() error {
	if b.h.isClosed() {
		return ErrClosed
	}
	return b.state.err
}

// CreateTrack creates a track in the broadcast and returns its producer,
// which the caller owns and must Close. It fails with ErrDuplicate when an
// open track has that name.
func (b *BroadcastProducer) CreateTrack(info Track) (*TrackProducer, error) {
	s := b.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return nil, err
	}
	if s.liveTrackLocked(info.Name) != nil {
		return nil, ErrDuplicate
	}
	return b.createLocked(info), nil
}

func (b *BroadcastProducer) createLocked(info Track) *TrackProducer {
	t := newTrackState(info, b.state.cache)
	t.producers, t.accepted = 1, true
	b.state.tracks[info.Name] = t
	return wrapTrackProducer(t)
}

// InsertTrack makes an existing track available in the broadcast under its
// name. The broadcast does not own it: the track ends when its own producers
// do. It fails with ErrDuplicate when an open track has that name.
func (b *BroadcastProducer) InsertTrack(t *TrackProducer) error {
	s := b.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	name := t.state.info.Name
	if s.liveTrackLocked(name) != nil {
		return ErrDuplicate
	}
	s.tracks[name] = t.state
	return nil
}

// RemoveTrack removes the named track from the broadcast (ErrNotFound when
// absent); the track itself is unaffected.
func (b *BroadcastProducer) RemoveTrack(name string) error {
	s := b.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	if _, ok := s.tracks[name]; !ok {
		return ErrNotFound
	}
	delete(s.tracks, name)
	return nil
}

// UniqueTrack creates a track named "0"+suffix, or "1"+suffix and so on:
// the first name no open track uses.
func (b *BroadcastProducer) UniqueTrack(suffix string) (*TrackProducer, error) {
	s := b.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		name := strconv.Itoa(i) + suffix
		if s.liveTrackLocked(name) == nil {
			return b.createLocked(Track{Name: name}), nil
		}
	}
}

// Dynamic returns a handler for on-demand tracks: while at least one is
// open, subscribing to an unknown track creates it and queues it for
// RequestedTrack. A BroadcastDynamic keeps the broadcast alive like a
// producer handle and must be closed.
func (b *BroadcastProducer) Dynamic() *BroadcastDynamic {
	s := b.state
	s.mu.Lock()
	s.dynamic++
	s.producers++
	s.mu.Unlock()
	d := &BroadcastDynamic{state: s}
	attach(&d.h, d, (*broadcastState).releaseDynamic, s)
	return d
}

// SetCachePolicy sets the cache bounds of the tracks created in the
// broadcast or requested from it from now on (zero fields take the
// defaults). Tracks inserted with InsertTrack keep their own.
func (b *BroadcastProducer) SetCachePolicy(policy CachePolicy) {
	s := b.state
	s.mu.Lock()
	s.cache = policy
	s.mu.Unlock()
}

// Consume returns a consumer of the broadcast.
func (b *BroadcastProducer) Consume() *BroadcastConsumer { return &BroadcastConsumer{state: b.state} }

// SetHops records the ids of the relays the broadcast came through, the one
// nearest to its origin first; sessions carry them in announcements so relays
// can avoid loops. Set them before publishing the broadcast: origins compare
// hop counts when a path is published twice.
func (b *BroadcastProducer) SetHops(hops []uint64) {
	s := b.state
	s.mu.Lock()
	s.hops = slices.Clone(hops)
	s.mu.Unlock()
}

// Abort ends the broadcast with err (ErrCancel when nil), aborting its
// tracks and pending requests. The first end wins.
func (b *BroadcastProducer) Abort(err error) error {
	if b.h.isClosed() {
		return ErrClosed
	}
	if err == nil {
		err = ErrCancel
	}
	b.state.abort(err)
	return nil
}

// Clone returns another producer handle for the same broadcast.
func (b *BroadcastProducer) Clone() *BroadcastProducer {
	s := b.state
	s.mu.Lock()
	s.producers++
	s.mu.Unlock()
	return wrapBroadcastProducer(s)
}

// Close releases this handle. It is idempotent.
func (b *BroadcastProducer) Close() {
	if b.h.close() {
		b.state.releaseProducer()
	}
}

// BroadcastDynamic receives the tracks that consumers request but the
// broadcast does not have. Close releases it; when the last one closes,
// pending requests fail with ErrNotFound and new ones are refused.
type BroadcastDynamic struct {
	state *broadcastState
	h     handle
}

// RequestedTrack waits for the next requested track, oldest first, and
// returns its producer, which the caller owns: it should serve the track,
// Abort it (for example with ErrNotFound) or Close it. The track starts
// unconfirmed: sessions answer its subscribers once it is confirmed (see
// TrackProducer.Accept; its first group confirms it too) and refuse them if
// that takes longer than their request timeout. It fails with the
// broadcast's end error once the broadcast ended.
func (d *BroadcastDynamic) RequestedTrack(ctx context.Context) (*TrackProducer, error) {
	s := d.state
	for {
		s.mu.Lock()
		switch {
		case d.h.isClosed():
			s.mu.Unlock()
			return nil, ErrClosed
		case len(s.requests) > 0:
			t := s.requests[0]
			s.requests[0] = nil
			s.requests = s.requests[1:]
			s.mu.Unlock()
			return wrapTrackProducer(t), nil
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

// RequestHandler serves a track that a consumer requested but the broadcast
// did not have. It owns track: it should serve it (confirming it with
// Accept or its first group, as for RequestedTrack), Abort it (for example
// with ErrNotFound) or Close it. It runs on the requesting goroutine, with
// no lock held, so it must not block: start the work and return.
type RequestHandler func(track *TrackProducer)

// HandleRequests makes h receive requested tracks as they are requested,
// instead of queueing them for RequestedTrack; requests already queued go to
// h at once. nil goes back to queueing. The handler is dropped when the last
// BroadcastDynamic closes.
func (d *BroadcastDynamic) HandleRequests(h RequestHandler) {
	s := d.state
	s.mu.Lock()
	if d.h.isClosed() {
		s.mu.Unlock()
		return
	}
	s.serve = h
	var pending []*trackState
	if h != nil {
		pending = s.requests
		s.requests = nil
	}
	s.mu.Unlock()
	for _, t := range pending {
		h(wrapTrackProducer(t))
	}
}

// FetchHandler answers a fetch of one group that the broadcast's cache does
// not hold, for instance by asking the upstream publisher for it.
type FetchHandler func(ctx context.Context, track string, sequence uint64, priority uint8) (*GroupConsumer, error)

// HandleFetch installs h to answer the fetches the cache cannot (see
// BroadcastConsumer.FetchGroup); nil removes it. The handler is dropped when
// the last BroadcastDynamic closes.
func (d *BroadcastDynamic) HandleFetch(h FetchHandler) {
	s := d.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if !d.h.isClosed() {
		s.fetch = h
	}
}

// Close releases this handler. It is idempotent.
func (d *BroadcastDynamic) Close() {
	if d.h.close() {
		d.state.releaseDynamic()
		d.state.mu.Lock()
		d.state.changed.notify() // wake RequestedTrack callers of this handle
		d.state.mu.Unlock()
	}
}

// BroadcastConsumer subscribes to the tracks of a broadcast. It is a plain
// view and needs no Close.
type BroadcastConsumer struct {
	state *broadcastState
}

// SubscribeTrack returns a consumer of the named track, which the caller
// must Close. Subscribers of one name share one track while it is open.
// An unknown track becomes a request for the dynamic handler when there is
// one (the broadcast forgets it again once its last consumer closes), and
// fails with ErrNotFound otherwise. Once the broadcast ended it fails with
// the end error.
func (c *BroadcastConsumer) SubscribeTrack(info Track) (*TrackConsumer, error) {
	return c.subscribe(info, true)
}

// SubscribeExisting is SubscribeTrack without the request: it fails with
// ErrNotFound when no open track has the name, dynamic handler or not. A
// server uses it to learn whether a subscription would cost a request to the
// track's source before making it.
func (c *BroadcastConsumer) SubscribeExisting(info Track) (*TrackConsumer, error) {
	return c.subscribe(info, false)
}

func (c *BroadcastConsumer) subscribe(info Track, request bool) (*TrackConsumer, error) {
	s := c.state
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, s.err
	}
	if t := s.liveTrackLocked(info.Name); t != nil {
		s.mu.Unlock()
		return t.newConsumer(), nil
	}
	if s.dynamic == 0 || !request {
		s.mu.Unlock()
		return nil, ErrNotFound
	}
	t := newTrackState(info, s.cache)
	t.producers = 1
	t.onUnused = s.forget
	s.tracks[info.Name] = t
	consumer := t.newConsumer()
	serve := s.serve
	if serve == nil {
		s.requests = append(s.requests, t)
		s.changed.notify()
	}
	s.mu.Unlock()
	if serve != nil {
		serve(wrapTrackProducer(t))
	}
	return consumer, nil
}

// Closed waits for the broadcast to end and returns why: the abort error,
// or ErrDropped when its last producer went away.
func (c *BroadcastConsumer) Closed(ctx context.Context) error {
	s := c.state
	for {
		s.mu.Lock()
		if err := s.err; err != nil {
			s.mu.Unlock()
			return err
		}
		ch := s.changed.wait()
		s.mu.Unlock()
		if err := block(ctx, ch); err != nil {
			return err
		}
	}
}

// Hops returns the ids of the relays the broadcast came through, the one
// nearest to its origin first; empty for a local broadcast.
func (c *BroadcastConsumer) Hops() []uint64 {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hops)
}

// hopCount returns the number of hops.
func (c *BroadcastConsumer) hopCount() int {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hops)
}

// FetchGroup returns one group of the named track. A group held by the live
// track's cache is returned at once, and a group newer than the track's
// latest is waited for. Otherwise the fetch handler answers (see
// BroadcastDynamic.HandleFetch), and without one the fetch fails with
// ErrNotFound, as it does for a sequence at or past the end of a finished
// track.
func (c *BroadcastConsumer) FetchGroup(ctx context.Context, track string, sequence uint64, priority uint8) (*GroupConsumer, error) {
	s := c.state
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	t := s.liveTrackLocked(track)
	handler := s.fetch
	s.mu.Unlock()
	if t != nil {
		g, err := t.fetchCached(ctx, sequence)
		if g != nil || err != nil {
			return g, err
		}
	}
	if handler == nil {
		return nil, ErrNotFound
	}
	return handler(ctx, track, sequence, priority)
}

// SameBroadcast reports whether both consumers read the same broadcast.
func (c *BroadcastConsumer) SameBroadcast(other *BroadcastConsumer) bool {
	return c != nil && other != nil && c.state == other.state
}
