package moq

import (
	"cmp"
	"context"
	"io"
	"iter"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Track names a track within a broadcast and describes it.
type Track struct {
	// Name identifies the track within its broadcast.
	Name string
	// Priority ranks the track against the other tracks a session sends;
	// higher is sent first.
	Priority uint8
	// Timescale is the number of frame timestamp units per second (see
	// FrameInfo.Timestamp); 0 means unknown. Engines that must send a
	// timescale for a track that has none send DefaultTimescale.
	Timescale uint64
}

// DefaultTimescale counts frame timestamps in milliseconds.
const DefaultTimescale = 1000

// The default cache bounds of a track: it keeps a group DefaultCacheAge and
// at most DefaultCacheBytes of payload in all, except the group with the
// highest sequence, which always stays. See CachePolicy.
const (
	DefaultCacheAge   = 30 * time.Second
	DefaultCacheBytes = 64 << 20
)

// CachePolicy bounds what a track keeps cached, by age and by bytes of
// payload; the group with the highest sequence always stays. Zero fields
// take the defaults.
type CachePolicy struct {
	// MaxAge evicts the groups cached longer ago than this, also when no
	// new group arrives. 0 means DefaultCacheAge.
	MaxAge time.Duration
	// MaxBytes evicts the oldest groups while the track caches more
	// payload than this. 0 means DefaultCacheBytes.
	MaxBytes uint64
	// Budget, when set, bounds the payload cached by every track that uses
	// it together: a track that grows the total past it evicts its own
	// oldest groups, so the total stays within the budget plus each
	// track's newest group.
	Budget *CacheBudget
}

func (c CachePolicy) withDefaults() CachePolicy {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultCacheAge
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultCacheBytes
	}
	return c
}

// CacheBudget is a number of bytes of cached payload shared by tracks; see
// CachePolicy.Budget.
type CacheBudget struct {
	max  int64
	used atomic.Int64
}

// NewCacheBudget returns a budget of max bytes.
func NewCacheBudget(max uint64) *CacheBudget {
	return &CacheBudget{max: int64(min(max, math.MaxInt64))}
}

// Used returns the bytes the tracks of the budget cache now.
func (b *CacheBudget) Used() uint64 { return uint64(max(b.used.Load(), 0)) }

// trackState is the state shared by a track's producers and consumers.
type trackState struct {
	mu      sync.Mutex
	changed notifier
	info    Track
	cache   CachePolicy // with defaults, but MaxAge may be 0 (SetCacheAge)
	// bytes is the payload of the cached groups, kept by the groups
	// themselves (see groupState.track) so that it needs no track lock.
	bytes atomic.Int64
	// expiry evicts expired groups when no new group arrives; expiryAt is
	// when it fires, zero while it is not armed.
	expiry   *time.Timer
	expiryAt time.Time

	// groups holds the cached groups in arrival order; nil marks an evicted
	// group behind an older live one. groups[i] has arrival index offset+i.
	groups []*groupState
	offset int
	bySeq  map[uint64]*groupState // the live cached groups

	// accepted is set once the track's source confirmed it: see
	// TrackProducer.Accept.
	accepted bool
	maxSeq   uint64
	hasMax   bool
	finalSeq uint64 // groups at or past it can never exist
	hasFinal bool
	err      error

	producers int
	consumers int
	// onUnused, when set, runs without locks held each time the number of
	// consumers drops to zero.
	onUnused func(*trackState)
}

func newTrackState(info Track, cache CachePolicy) *trackState {
	return &trackState{info: info, cache: cache.withDefaults(), bySeq: make(map[uint64]*groupState)}
}

// insertLocked caches g, which just arrived, and evicts what the cache
// policy no longer allows.
func (s *trackState) insertLocked(g *groupState) {
	now := time.Now()
	g.created = now
	s.accepted = true
	if !s.hasMax || g.sequence > s.maxSeq {
		s.maxSeq, s.hasMax = g.sequence, true
	}
	g.attach(s)
	s.groups = append(s.groups, g)
	s.bySeq[g.sequence] = g
	s.evictLocked(now)
	s.changed.notify()
}

// overBudget reports whether the cached payload exceeds what the policy
// allows.
func (s *trackState) overBudget() bool {
	if uint64(max(s.bytes.Load(), 0)) > s.cache.MaxBytes {
		return true
	}
	b := s.cache.Budget
	return b != nil && b.used.Load() > b.max
}

// evictLocked drops, oldest arrival first, the groups older than the cache
// age and, while the cache holds more bytes than allowed, the oldest ones;
// never the group with the highest sequence. Groups arrive in order of
// creation time, so the scan stops at the first group that is fresh once
// the bytes are within bounds. It then arms the expiry timer for the next
// group to expire.
func (s *trackState) evictLocked(now time.Time) {
	for i, g := range s.groups {
		if g == nil || g.sequence == s.maxSeq {
			continue
		}
		if now.Sub(g.created) <= s.cache.MaxAge && !s.overBudget() {
			break
		}
		delete(s.bySeq, g.sequence)
		s.groups[i] = nil
		g.detach()
	}
	n := 0
	for n < len(s.groups) && s.groups[n] == nil {
		n++
	}
	if n > 0 {
		clear(s.groups[:n])
		s.groups = s.groups[n:]
		s.offset += n
	}
	s.armLocked(now)
}

// armLocked sets the expiry timer for the oldest cached group but the
// newest, or stops it when there is none.
func (s *trackState) armLocked(now time.Time) {
	for _, g := range s.groups {
		if g == nil || g.sequence == s.maxSeq {
			continue
		}
		at := g.created.Add(s.cache.MaxAge + time.Millisecond)
		switch {
		case at.Equal(s.expiryAt):
		case s.expiry == nil:
			s.expiry = time.AfterFunc(at.Sub(now), s.expire)
		default:
			s.expiry.Reset(at.Sub(now))
		}
		s.expiryAt = at
		return
	}
	if !s.expiryAt.IsZero() {
		s.expiry.Stop()
		s.expiryAt = time.Time{}
	}
}

// expire evicts what expired while no new group arrived.
func (s *trackState) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiryAt = time.Time{}
	s.evictLocked(time.Now())
}

// trim evicts the oldest groups while the cache holds more bytes than
// allowed; writers call it after adding payload.
func (s *trackState) trim() {
	if !s.overBudget() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictLocked(time.Now())
}

// abort fails the track and every cached group with err. The first abort
// wins.
func (s *trackState) abort(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	for _, g := range s.groups {
		if g != nil {
			g.abort(err)
		}
	}
	s.err = err
	s.changed.notify()
}

// alive reports whether the track can still get groups: not aborted and
// with a producer left.
func (s *trackState) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && s.producers > 0
}

// releaseProducer drops one producer reference; the last one ends an
// unfinished track with ErrDropped. Cached groups keep their own producers.
func (s *trackState) releaseProducer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.producers--
	if s.producers == 0 && !s.hasFinal && s.err == nil {
		s.err = ErrDropped
	}
	s.changed.notify()
	s.retireLocked()
}

// retireLocked empties the cache of a track nobody can read any more: with
// no producer and no consumer left, nothing reaches it again, so its groups
// give their bytes back to the budgets and the expiry timer stops holding
// it.
func (s *trackState) retireLocked() {
	if s.producers > 0 || s.consumers > 0 {
		return
	}
	for _, g := range s.groups {
		if g != nil {
			g.detach()
		}
	}
	clear(s.groups)
	s.groups = s.groups[:0]
	clear(s.bySeq)
	if !s.expiryAt.IsZero() {
		s.expiry.Stop()
		s.expiryAt = time.Time{}
	}
}

// newConsumer counts a new consumer and returns its handle.
func (s *trackState) newConsumer() *TrackConsumer {
	s.mu.Lock()
	s.consumers++
	if s.consumers == 1 {
		s.changed.notify()
	}
	s.mu.Unlock()
	c := &TrackConsumer{state: s}
	attach(&c.h, c, (*trackState).releaseConsumer, s)
	return c
}

// releaseConsumer drops one consumer reference.
func (s *trackState) releaseConsumer() {
	s.mu.Lock()
	s.consumers--
	var hook func(*trackState)
	if s.consumers == 0 {
		s.changed.notify()
		hook = s.onUnused
		s.retireLocked()
	}
	s.mu.Unlock()
	if hook != nil {
		hook(s)
	}
}

// wait runs check under the lock until it reports done, waking on every
// state change.
func (s *trackState) wait(ctx context.Context, check func() bool) error {
	for {
		s.mu.Lock()
		if check() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed.wait()
		s.mu.Unlock()
		if err := block(ctx, ch); err != nil {
			return err
		}
	}
}

// fetchCached returns the cached group with the given sequence, waiting for
// it while it is newer than every group so far and the track may still get
// it. It returns nil and no error when the group is older and not cached, and
// ErrNotFound at or past the end of a finished track.
func (s *trackState) fetchCached(ctx context.Context, sequence uint64) (*GroupConsumer, error) {
	var (
		found *groupState
		err   error
	)
	werr := s.wait(ctx, func() bool {
		if g, ok := s.bySeq[sequence]; ok {
			found = g
			return true
		}
		switch {
		case s.hasFinal && sequence >= s.finalSeq:
			err = ErrNotFound
		case s.hasMax && sequence <= s.maxSeq:
			// Evicted or never delivered: not the cache's to answer.
		case s.err != nil:
			err = s.err
		case s.producers == 0:
			err = ErrDropped
		default:
			return false // a future group: wait for it
		}
		return true
	})
	if werr != nil {
		return nil, werr
	}
	if err != nil || found == nil {
		return nil, err
	}
	return &GroupConsumer{state: found}, nil
}

func (s *trackState) newestLocked() (uint64, time.Time, bool) {
	if !s.hasMax {
		return 0, time.Time{}, false
	}
	var created time.Time
	if g := s.bySeq[s.maxSeq]; g != nil {
		created = g.created
	}
	return s.maxSeq, created, true
}

// TrackProducer creates the groups of a track. Handles are reference
// counted: Clone returns another handle and Close releases one. When the last
// handle is released before Finish or Abort, the track ends with ErrDropped
// (groups already created keep their own producers). Close is required for
// prompt cleanup: an unreachable open handle is only released whenever the
// garbage collector notices.
type TrackProducer struct {
	state *trackState
	h     handle
}

// NewTrack creates a track and returns its first producer handle.
func NewTrack(info Track) *TrackProducer {
	s := newTrackState(info, CachePolicy{})
	s.producers, s.accepted = 1, true
	return wrapTrackProducer(s)
}

// wrapTrackProducer returns a handle for a producer reference the caller
// already counted in s.producers.
func wrapTrackProducer(s *trackState) *TrackProducer {
	p := &TrackProducer{state: s}
	attach(&p.h, p, (*trackState).releaseProducer, s)
	return p
}

// Info returns the track's name and priority.
func (p *TrackProducer) Info() Track { return p.state.info }

// SetCacheAge sets how long groups stay cached (DefaultCacheAge unless
// changed); 0 keeps only the group with the highest sequence, which always
// stays.
func (p *TrackProducer) SetCacheAge(d time.Duration) {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache.MaxAge = max(d, 0)
	s.evictLocked(time.Now())
}

// SetCachePolicy sets the track's cache bounds (zero fields take the
// defaults) and evicts what they no longer allow.
func (p *TrackProducer) SetCachePolicy(policy CachePolicy) {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setCacheLocked(policy.withDefaults())
}

// setCacheLocked moves the cached groups' bytes to policy's budget and
// applies it.
func (s *trackState) setCacheLocked(policy CachePolicy) {
	if policy.Budget != s.cache.Budget {
		for _, g := range s.groups {
			if g != nil {
				g.rebudget(policy.Budget)
			}
		}
	}
	s.cache = policy
	s.evictLocked(time.Now())
}

// writableLocked returns why the track cannot take new groups, if it cannot.
func (p *TrackProducer) writableLocked() error {
	if p.h.isClosed() {
		return ErrClosed
	}
	return p.state.err
}

// CreateGroup creates the group with the given sequence. It fails with
// ErrDuplicate when that group is cached, ErrClosed at or past the final
// sequence, and with the abort error once the track was aborted.
func (p *TrackProducer) CreateGroup(sequence uint64) (*GroupProducer, error) {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return nil, err
	}
	if s.hasFinal && sequence >= s.finalSeq {
		return nil, ErrClosed
	}
	if _, dup := s.bySeq[sequence]; dup {
		return nil, ErrDuplicate
	}
	g := &groupState{sequence: sequence, producers: 1}
	s.insertLocked(g)
	return wrapGroupProducer(g), nil
}

// nextSequenceLocked returns the sequence AppendGroup would use.
func (p *TrackProducer) nextSequenceLocked() (uint64, error) {
	s := p.state
	if err := p.writableLocked(); err != nil {
		return 0, err
	}
	var seq uint64
	if s.hasMax {
		if s.maxSeq == math.MaxUint64 {
			return 0, ErrBoundsExceeded
		}
		seq = s.maxSeq + 1
	}
	if s.hasFinal && seq >= s.finalSeq {
		return 0, ErrClosed
	}
	return seq, nil
}

// AppendGroup creates the group after the highest sequence so far (0 for
// the first one). It fails with ErrBoundsExceeded when the sequence would
// overflow.
func (p *TrackProducer) AppendGroup() (*GroupProducer, error) {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, err := p.nextSequenceLocked()
	if err != nil {
		return nil, err
	}
	g := &groupState{sequence: seq, producers: 1}
	s.insertLocked(g)
	return wrapGroupProducer(g), nil
}

// WriteFrame appends a finished group holding one frame. The payload is
// retained and shared with every consumer, not copied: the caller must not
// modify it afterwards.
func (p *TrackProducer) WriteFrame(payload []byte) error {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, err := p.nextSequenceLocked()
	if err != nil {
		return err
	}
	f := newCompleteFrame(payload, FrameInfo{})
	g := &groupState{sequence: seq, frames: []*frameState{f}, bytes: f.info.Size, fin: true}
	s.insertLocked(g)
	return nil
}

// Finish ends the track after its highest sequence (so it has max+1 groups,
// or none when empty). Older groups may still be created. A second Finish
// fails with ErrClosed.
func (p *TrackProducer) Finish() error {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return err
	}
	if s.hasFinal {
		return ErrClosed
	}
	var final uint64
	if s.hasMax {
		if s.maxSeq == math.MaxUint64 {
			return ErrBoundsExceeded
		}
		final = s.maxSeq + 1
	}
	s.finalSeq, s.hasFinal, s.accepted = final, true, true
	s.changed.notify()
	return nil
}

// FinishAt ends the track after sequence, which must be the highest sequence
// so far (ErrClosed otherwise, or when already finished).
func (p *TrackProducer) FinishAt(sequence uint64) error {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return err
	}
	if !s.hasMax || s.hasFinal || sequence != s.maxSeq {
		return ErrClosed
	}
	if sequence == math.MaxUint64 {
		return ErrBoundsExceeded
	}
	s.finalSeq, s.hasFinal, s.accepted = sequence+1, true, true
	s.changed.notify()
	return nil
}

// Abort fails the track and every cached group with err (ErrCancel when
// nil); consumers waiting on the track get err, while a finished track
// still reports its clean end. The first abort wins.
func (p *TrackProducer) Abort(err error) error {
	if p.h.isClosed() {
		return ErrClosed
	}
	if err == nil {
		err = ErrCancel
	}
	p.state.abort(err)
	return nil
}

// Accept confirms a requested track: its source has it and will serve it,
// which subscribers waiting in TrackConsumer.Accepted learn. A track
// requested from a broadcast (see BroadcastDynamic) starts unconfirmed; a
// track created any other way is confirmed from the start, and a track's
// first group or its end confirms it too. It fails with the abort error
// once the track was aborted.
func (p *TrackProducer) Accept() error {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := p.writableLocked(); err != nil {
		return err
	}
	if !s.accepted {
		s.accepted = true
		s.changed.notify()
	}
	return nil
}

// Consume returns a new consumer positioned at the oldest cached group. The
// caller must Close it.
func (p *TrackProducer) Consume() *TrackConsumer { return p.state.newConsumer() }

// Clone returns another producer handle for the same track.
func (p *TrackProducer) Clone() *TrackProducer {
	s := p.state
	s.mu.Lock()
	s.producers++
	s.mu.Unlock()
	return wrapTrackProducer(s)
}

// Close releases this handle. It is idempotent.
func (p *TrackProducer) Close() {
	if p.h.close() {
		p.state.releaseProducer()
	}
}

// Used waits until the track has at least one consumer. It fails with the
// abort error once the track was aborted.
func (p *TrackProducer) Used(ctx context.Context) error {
	s := p.state
	var err error
	werr := s.wait(ctx, func() bool {
		if s.consumers > 0 {
			return true
		}
		err = s.err
		return err != nil
	})
	if werr != nil {
		return werr
	}
	return err
}

// Unused waits until the track has no consumer left (immediately when it
// never had one). It fails with the abort error once the track was aborted.
func (p *TrackProducer) Unused(ctx context.Context) error {
	s := p.state
	var err error
	werr := s.wait(ctx, func() bool {
		if s.consumers == 0 {
			return true
		}
		err = s.err
		return err != nil
	})
	if werr != nil {
		return werr
	}
	return err
}

// Latest returns the highest sequence created so far.
func (p *TrackProducer) Latest() (uint64, bool) { return p.state.latest() }

func (s *trackState) latest() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxSeq, s.hasMax
}

// CachedGroups returns the groups still cached whose sequence is in
// [from, to), in sequence order: see TrackConsumer.CachedGroups.
func (p *TrackProducer) CachedGroups(from, to uint64) []*GroupConsumer {
	return p.state.cachedGroups(from, to)
}

// SameTrack reports whether both handles belong to the same track.
func (p *TrackProducer) SameTrack(other *TrackProducer) bool {
	return p != nil && other != nil && p.state == other.state
}

// IsClosed reports whether the track is finished, aborted or dropped.
func (p *TrackProducer) IsClosed() bool {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasFinal || s.err != nil || s.producers == 0
}

// TrackConsumer reads the groups of a track. Handles are reference counted
// (TrackProducer.Used and Unused watch them): Clone returns another handle
// and Close releases one. A TrackConsumer is not safe for concurrent use;
// Clone it to read from several goroutines.
type TrackConsumer struct {
	state  *trackState
	h      handle
	index  int    // arrival index of the next group to look at
	minSeq uint64 // groups below it are skipped
}

// Info returns the track's name and priority.
func (c *TrackConsumer) Info() Track { return c.state.info }

// NextGroup returns the next group in arrival order whose sequence is at
// least the StartAt sequence, skipping groups evicted meanwhile. It returns
// io.EOF once the track is finished and every cached group was returned (it
// does not wait for missing older groups), the abort error once the track
// was aborted, and ErrDropped when every producer went away.
func (c *TrackConsumer) NextGroup(ctx context.Context) (*GroupConsumer, error) {
	s := c.state
	var (
		found *groupState
		err   error
	)
	werr := s.wait(ctx, func() bool {
		for i := max(c.index-s.offset, 0); i < len(s.groups); i++ {
			if g := s.groups[i]; g != nil && g.sequence >= c.minSeq {
				found = g
				c.index = s.offset + i + 1
				return true
			}
		}
		if s.hasFinal {
			err = io.EOF
			return true
		}
		err = s.err
		return err != nil
	})
	if werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, err
	}
	return &GroupConsumer{state: found}, nil
}

// Groups iterates over the groups NextGroup returns until the track ends. An
// error other than the end is yielded once, with a nil group, and ends the
// iteration.
func (c *TrackConsumer) Groups(ctx context.Context) iter.Seq2[*GroupConsumer, error] {
	return each(ctx, c.NextGroup)
}

// GetGroup returns the cached group with the given sequence, waiting for it
// to arrive. It fails with ErrNotFound when the sequence is at or past the
// end of a finished track.
func (c *TrackConsumer) GetGroup(ctx context.Context, sequence uint64) (*GroupConsumer, error) {
	s := c.state
	var (
		found *groupState
		err   error
	)
	werr := s.wait(ctx, func() bool {
		if g, ok := s.bySeq[sequence]; ok {
			found = g
			return true
		}
		if s.hasFinal && sequence >= s.finalSeq {
			err = ErrNotFound
			return true
		}
		err = s.err
		return err != nil
	})
	if werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, err
	}
	return &GroupConsumer{state: found}, nil
}

// StartAt makes NextGroup skip groups with a lower sequence.
func (c *TrackConsumer) StartAt(sequence uint64) { c.minSeq = sequence }

// Latest returns the highest sequence created so far.
func (c *TrackConsumer) Latest() (uint64, bool) { return c.state.latest() }

// Newest returns the highest sequence created so far and when its group was
// cached (the zero time once that group was evicted). Together with
// GroupConsumer.Created it tells how far a group lags the live edge, which
// is what max-latency rules measure.
func (c *TrackConsumer) Newest() (seq uint64, created time.Time, ok bool) {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newestLocked()
}

// WaitNewer waits until the track has a group with a sequence of at least
// next and returns the highest sequence and its cache time, as Newest does.
// It returns io.EOF once no such group can come: the track finished, was
// aborted or lost its producers.
func (c *TrackConsumer) WaitNewer(ctx context.Context, next uint64) (seq uint64, created time.Time, err error) {
	s := c.state
	var ok bool
	werr := s.wait(ctx, func() bool {
		seq, created, ok = s.newestLocked()
		if ok && seq >= next {
			return true
		}
		if s.hasFinal || s.err != nil || s.producers == 0 {
			err = io.EOF
			return true
		}
		return false
	})
	if werr != nil {
		return 0, time.Time{}, werr
	}
	return seq, created, err
}

// CachedGroups returns the groups still cached whose sequence is in
// [from, to), in sequence order, whatever the consumer's position: what a
// subscription lowering its start group can still be served.
func (c *TrackConsumer) CachedGroups(from, to uint64) []*GroupConsumer {
	return c.state.cachedGroups(from, to)
}

func (s *trackState) cachedGroups(from, to uint64) []*GroupConsumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*GroupConsumer
	for seq, g := range s.bySeq {
		if seq >= from && seq < to {
			out = append(out, &GroupConsumer{state: g})
		}
	}
	slices.SortFunc(out, func(a, b *GroupConsumer) int { return cmp.Compare(a.Sequence(), b.Sequence()) })
	return out
}

// Accepted waits until the track's source confirmed it (see
// TrackProducer.Accept) and returns nil, or the abort error (ErrDropped when
// every producer went away) when it ended unconfirmed. A relay answers a
// subscription only once its upstream did.
func (c *TrackConsumer) Accepted(ctx context.Context) error {
	s := c.state
	var err error
	werr := s.wait(ctx, func() bool {
		if s.accepted {
			return true
		}
		err = s.err
		return err != nil
	})
	if werr != nil {
		return werr
	}
	return err
}

// Closed waits for the end of the track: nil when it finished, the abort
// error (ErrDropped when every producer went away) otherwise.
func (c *TrackConsumer) Closed(ctx context.Context) error {
	_, err := c.Finished(ctx)
	return err
}

// Finished waits for the track to finish and returns its number of groups
// (the final sequence); it fails with the abort error instead.
func (c *TrackConsumer) Finished(ctx context.Context) (uint64, error) {
	s := c.state
	var (
		final uint64
		err   error
	)
	werr := s.wait(ctx, func() bool {
		if s.hasFinal {
			final = s.finalSeq
			return true
		}
		err = s.err
		return err != nil
	})
	if werr != nil {
		return 0, werr
	}
	return final, err
}

// IsFinished reports, without waiting, whether the track was finished
// (Finish or FinishAt); an aborted or dropped track is not finished.
func (c *TrackConsumer) IsFinished() bool {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasFinal
}

// Produce returns a new producer handle for this track, sharing its state:
// groups written through it reach every consumer, and it keeps the track
// alive until closed. It fails with the abort error, or ErrDropped when no
// producer is left.
func (c *TrackConsumer) Produce() (*TrackProducer, error) {
	s := c.state
	s.mu.Lock()
	switch {
	case s.err != nil:
		err := s.err
		s.mu.Unlock()
		return nil, err
	case s.producers == 0:
		s.mu.Unlock()
		return nil, ErrDropped
	}
	s.producers++
	s.mu.Unlock()
	return wrapTrackProducer(s), nil
}

// Clone returns another consumer handle at the same position; the two then
// advance independently. The caller must Close it.
func (c *TrackConsumer) Clone() *TrackConsumer {
	n := c.state.newConsumer()
	n.index, n.minSeq = c.index, c.minSeq
	return n
}

// SameTrack reports whether both consumers read the same track.
func (c *TrackConsumer) SameTrack(other *TrackConsumer) bool {
	return c != nil && other != nil && c.state == other.state
}

// Close releases this handle. It is idempotent.
func (c *TrackConsumer) Close() {
	if c.h.close() {
		c.state.releaseConsumer()
	}
}
