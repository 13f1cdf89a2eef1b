package serve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
	"github.com/moqgo/moq/transport"
)

// A Subscription sends one track to the peer that subscribed to it: one
// stream per group, honouring the subscriber's priority, group order, max
// latency and start and end groups, and their changes by Update.
//
// Max latency follows the moq-lite expiration rule on the track's cache
// clock (moq.GroupConsumer.Created): a group expires once a newer group (by
// sequence) exists that was cached more than the max latency after it. An
// expired group is not started, and one being written is reset; both are
// reported dropped with moq.ErrOld.
//
// With an end group the subscription completes once every group from the
// start to the end is accounted for: written, reset, or reported dropped.
// Groups still missing when a group past the end arrives or the track ends
// are reported dropped with a nil error (unavailable).

// MaxGroupsInFlight bounds the group streams one subscription writes at
// once. Further groups wait in the track's cache, which bounds memory by age.
const MaxGroupsInFlight = 64

// maxAccountedGroups bounds the record of the groups an unbounded
// subscription has served; older entries are forgotten and count as served
// should an end group be set later.
const maxAccountedGroups = 4096

// errExpired is the cause that cancels a group past the max latency.
var errExpired = errors.New("moq: group expired")

// Sender is the wire side of a subscription, supplied by the engine.
type Sender interface {
	// OpenGroup opens the stream that carries one group.
	OpenGroup(ctx context.Context) (transport.SendStream, error)
	// WriteGroup writes group on st, the engine's stream header then every
	// frame, until the group ends. It does not close st.
	WriteGroup(ctx context.Context, st transport.SendStream, group *moq.GroupConsumer) error
	// Drop reports the groups start..end (inclusive) as not delivered: err
	// is nil when they are unavailable and moq.ErrOld when they expired.
	Drop(start, end uint64, err error)
	// Code returns the code a stream is reset with to carry err.
	Code(err error) uint32
}

// Pool bounds the group streams written at once by all the subscriptions
// that share it, such as a session's: a peer that reads none of them holds
// at most that many writers and their buffers. A nil Pool bounds nothing.
type Pool chan struct{}

// NewPool returns a pool of n writers.
func NewPool(n int) Pool { return make(Pool, n) }

func (p Pool) acquire(ctx context.Context) error {
	if p == nil {
		return nil
	}
	select {
	case p <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (p Pool) release() {
	if p != nil {
		<-p
	}
}

// Subscription serves one subscription; see the notes above.
type Subscription struct {
	track *moq.TrackConsumer // read by Run only
	send  Sender
	prio  *Priorities
	pool  Pool
	log   *slog.Logger

	mu         sync.Mutex
	gen        context.Context // cancelled (and replaced) by every update
	genCancel  context.CancelFunc
	priority   uint8
	ordered    bool
	maxLatency time.Duration
	start      uint64 // first group wanted, once hasStart
	hasStart   bool
	moved      bool     // start changed: the loop must apply it
	backfill   []uint64 // [from, to) ranges below a lowered start to serve from the cache
	end        uint64
	hasEnd     bool
	highest    uint64 // the highest sequence the loop reached, once seen
	seen       bool
	accounted  map[uint64]struct{} // groups started or reported dropped
	forgotten  uint64              // groups below it count as accounted
	inRange    uint64              // accounted groups in [start, end]
	streams    map[*groupWriter]struct{}
}

// groupWriter is one group stream being written.
type groupWriter struct {
	seq     uint64
	created time.Time
	item    *Item // nil until the stream is open
	cancel  context.CancelCauseFunc
}

// NewSubscription prepares serving track to the peer with opts, its group
// streams ranked in prio and drawn from pool. A subscription without a start
// group starts at the newest group. The subscription does not own track.
func NewSubscription(track *moq.TrackConsumer, opts engine.SubscribeOptions, prio *Priorities, pool Pool, send Sender, log *slog.Logger) *Subscription {
	sub := &Subscription{
		track:      track,
		send:       send,
		prio:       prio,
		pool:       pool,
		log:        log,
		priority:   opts.Priority,
		ordered:    opts.Ordered,
		maxLatency: opts.MaxLatency,
		accounted:  make(map[uint64]struct{}),
		streams:    make(map[*groupWriter]struct{}),
	}
	sub.gen, sub.genCancel = context.WithCancel(context.Background())
	switch {
	case opts.Start != nil:
		sub.start, sub.hasStart = *opts.Start, true
	default:
		if latest, ok := track.Latest(); ok {
			sub.start, sub.hasStart = latest, true
		}
	}
	if sub.hasStart {
		track.StartAt(sub.start)
	}
	if opts.End != nil {
		sub.end, sub.hasEnd = *opts.End, true
	}
	return sub
}

// Options describes the subscription as it now is, with the start group
// once known: what the publisher's answers to the subscriber carry.
func (sub *Subscription) Options() engine.SubscribeOptions {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	o := engine.SubscribeOptions{Priority: sub.priority, Ordered: sub.ordered, MaxLatency: sub.maxLatency}
	if sub.hasStart {
		start := sub.start
		o.Start = &start
	}
	if sub.hasEnd {
		end := sub.end
		o.End = &end
	}
	return o
}

// signalLocked wakes the serving loop and the expiry watcher.
func (sub *Subscription) signalLocked() {
	sub.genCancel()
	sub.gen, sub.genCancel = context.WithCancel(context.Background())
}

// Update applies the subscriber's new options. A nil start leaves the start
// group as it is; a nil end removes the end.
func (sub *Subscription) Update(opts engine.SubscribeOptions) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if opts.Priority != sub.priority || opts.Ordered != sub.ordered {
		sub.priority, sub.ordered = opts.Priority, opts.Ordered
		for w := range sub.streams {
			if w.item != nil {
				w.item.SetOrder(sub.priority, sub.ordered)
			}
		}
	}
	sub.maxLatency = opts.MaxLatency
	if opts.Start != nil && (!sub.hasStart || *opts.Start != sub.start) {
		next := *opts.Start
		if sub.hasStart && next < sub.start {
			sub.backfill = append(sub.backfill, next, sub.start)
		}
		sub.start, sub.hasStart, sub.moved = next, true, true
	}
	sub.hasEnd = opts.End != nil
	if sub.hasEnd {
		sub.end = *opts.End
	}
	sub.countLocked()
	sub.signalLocked()
}

// countLocked recounts the accounted groups in [start, end].
func (sub *Subscription) countLocked() {
	sub.inRange = 0
	if !sub.hasEnd || !sub.hasStart {
		return
	}
	for seq := range sub.accounted {
		if seq >= sub.start && seq <= sub.end {
			sub.inRange++
		}
	}
}

// apply hands the loop the changes made by updates: the new start group, if
// it moved, and the cached groups below a lowered start to serve.
func (sub *Subscription) apply() (gen context.Context, startAt uint64, moved bool, backfill []*moq.GroupConsumer) {
	sub.mu.Lock()
	gen, startAt, moved = sub.gen, sub.start, sub.moved
	sub.moved = false
	ranges := sub.backfill
	sub.backfill = nil
	sub.mu.Unlock()
	for i := 0; i+1 < len(ranges); i += 2 {
		backfill = append(backfill, sub.track.CachedGroups(ranges[i], ranges[i+1])...)
	}
	return gen, startAt, moved, backfill
}

// verdict is what the loop does with a group.
type verdict int

const (
	serve  verdict = iota
	skip           // not wanted
	expire         // past the max latency: report it dropped
)

// admit decides the fate of a group the loop reached.
func (sub *Subscription) admit(g *moq.GroupConsumer) verdict {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	seq := g.Sequence()
	if !sub.hasStart {
		// The subscription started before the track had a group.
		sub.start, sub.hasStart = seq, true
	}
	if !sub.seen || seq > sub.highest {
		sub.highest, sub.seen = seq, true
	}
	if seq < sub.start || (sub.hasEnd && seq > sub.end) {
		return skip
	}
	if _, done := sub.accounted[seq]; done || seq < sub.forgotten {
		return skip // already served: a lowered start can reach it again
	}
	sub.accounted[seq] = struct{}{}
	if sub.hasEnd {
		sub.inRange++
	} else if len(sub.accounted) > 2*maxAccountedGroups {
		sub.forgetLocked(seq)
	}
	if sub.maxLatency > 0 {
		newest, newestCreated, ok := sub.track.Newest()
		if ok && isExpired(seq, g.Created(), newest, newestCreated, sub.maxLatency) {
			return expire
		}
	}
	return serve
}

// forgetLocked drops the oldest half of the accounted groups.
func (sub *Subscription) forgetLocked(newest uint64) {
	if newest < maxAccountedGroups {
		return
	}
	sub.forgotten = max(sub.forgotten, newest-maxAccountedGroups)
	for seq := range sub.accounted {
		if seq < sub.forgotten {
			delete(sub.accounted, seq)
		}
	}
}

// isExpired is the expiration rule: a group expires once the newest group has
// a higher sequence and was cached more than maxLatency after it.
func isExpired(seq uint64, created time.Time, newest uint64, newestCreated time.Time, maxLatency time.Duration) bool {
	return maxLatency > 0 && newest > seq && newestCreated.Sub(created) > maxLatency
}

// complete reports whether every wanted group is accounted for, or a group
// past the end arrived (so the missing ones are taken as lost).
func (sub *Subscription) complete() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	switch {
	case !sub.hasEnd:
		return false
	case sub.seen && sub.highest > sub.end:
		return true
	case !sub.hasStart:
		return false
	case sub.start > sub.end:
		return true
	}
	covered := sub.inRange
	if sub.forgotten > sub.start {
		covered += min(sub.forgotten, sub.end+1) - sub.start
	}
	return covered > sub.end-sub.start
}

// missing returns the ranges of [start, end] not accounted for, as
// inclusive start/end pairs.
func (sub *Subscription) missing() [][2]uint64 {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.hasEnd || !sub.hasStart {
		return nil
	}
	return gaps(sub.accounted, max(sub.start, sub.forgotten), sub.end)
}

// gaps returns the ranges of [from, to] that are not in have, as inclusive
// start/end pairs.
func gaps(have map[uint64]struct{}, from, to uint64) [][2]uint64 {
	if from > to {
		return nil
	}
	var in []uint64
	for seq := range have {
		if seq >= from && seq <= to {
			in = append(in, seq)
		}
	}
	slices.Sort(in)
	var out [][2]uint64
	next := from
	for _, seq := range in {
		if seq > next {
			out = append(out, [2]uint64{next, seq - 1})
		}
		if seq == to {
			return out
		}
		next = seq + 1
	}
	return append(out, [2]uint64{next, to})
}

// Run writes the track's groups until the subscription is complete (nil),
// the track ends (nil; the groups still missing below an end group are
// reported dropped first) or it fails. At most MaxGroupsInFlight group
// streams are open at once; later groups wait in the track's cache. Run
// returns once every group stream it started is done.
func (sub *Subscription) Run(ctx context.Context) error {
	groupCtx, cancelGroups := context.WithCancel(ctx)
	var writers sync.WaitGroup
	watcherDone := make(chan struct{})
	defer func() {
		cancelGroups()
		writers.Wait()
		<-watcherDone
	}()
	go func() {
		defer close(watcherDone)
		sub.watchLatency(groupCtx)
	}()

	slots := make(chan struct{}, MaxGroupsInFlight)
	start := func(g *moq.GroupConsumer) error {
		switch sub.admit(g) {
		case skip:
			return nil
		case expire:
			sub.send.Drop(g.Sequence(), g.Sequence(), moq.ErrOld)
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if err := sub.pool.acquire(ctx); err != nil {
			<-slots
			return err
		}
		writers.Go(func() {
			defer func() { <-slots }()
			defer sub.pool.release()
			sub.serveGroup(groupCtx, g)
		})
		return nil
	}
	for {
		gen, startAt, moved, backfill := sub.apply()
		if moved {
			sub.track.StartAt(startAt)
		}
		for _, g := range backfill {
			if err := start(g); err != nil {
				return err
			}
		}
		if sub.complete() {
			break
		}
		wait, cancelWait := context.WithCancel(ctx)
		stop := context.AfterFunc(gen, cancelWait)
		group, err := sub.track.NextGroup(wait)
		stop()
		cancelWait()
		if errors.Is(err, io.EOF) {
			break // the track finished
		}
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if gen.Err() != nil {
				continue // an update arrived
			}
			return err
		}
		if err := start(group); err != nil {
			return err
		}
	}
	// The end must not overtake the groups.
	writers.Wait()
	for _, gap := range sub.missing() {
		sub.send.Drop(gap[0], gap[1], nil)
	}
	return nil
}

// watchLatency resets the group streams that expire while being written: it
// checks them whenever a newer group arrives or an update changes the max
// latency.
func (sub *Subscription) watchLatency(ctx context.Context) {
	var next uint64
	for {
		sub.mu.Lock()
		gen, maxLatency := sub.gen, sub.maxLatency
		sub.mu.Unlock()
		if maxLatency == 0 {
			// Nothing expires until an update sets a max latency.
			select {
			case <-ctx.Done():
				return
			case <-gen.Done():
				continue
			}
		}
		sub.expireWriters(maxLatency)
		wait, cancelWait := context.WithCancel(ctx)
		stop := context.AfterFunc(gen, cancelWait)
		seq, _, err := sub.track.WaitNewer(wait, next)
		stop()
		cancelWait()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, io.EOF):
			// Only a lower max latency can expire more now.
			select {
			case <-ctx.Done():
				return
			case <-gen.Done():
			}
		case err == nil:
			next = seq + 1
		}
	}
}

// expireWriters cancels the group streams that have expired.
func (sub *Subscription) expireWriters(maxLatency time.Duration) {
	newest, newestCreated, ok := sub.track.Newest()
	if !ok {
		return
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for w := range sub.streams {
		if isExpired(w.seq, w.created, newest, newestCreated, maxLatency) {
			w.cancel(errExpired)
		}
	}
}

// serveGroup writes one group on its own stream.
func (sub *Subscription) serveGroup(ctx context.Context, group *moq.GroupConsumer) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &groupWriter{seq: group.Sequence(), created: group.Created(), cancel: cancel}
	sub.mu.Lock()
	sub.streams[w] = struct{}{}
	sub.mu.Unlock()
	unregister := func() {
		sub.mu.Lock()
		delete(sub.streams, w)
		sub.mu.Unlock()
		if w.item != nil {
			w.item.Remove()
		}
	}
	expired := func() bool {
		if !errors.Is(context.Cause(ctx), errExpired) {
			return false
		}
		sub.send.Drop(w.seq, w.seq, moq.ErrOld)
		return true
	}

	st, err := sub.send.OpenGroup(ctx)
	if err != nil {
		unregister()
		expired()
		return
	}
	sub.mu.Lock()
	w.item = sub.prio.Insert(sub.priority, sub.ordered, w.seq, st)
	sub.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		code := moq.ErrCancel
		if errors.Is(context.Cause(ctx), errExpired) {
			code = moq.ErrOld
		}
		st.CancelWrite(sub.send.Code(code))
	})

	err = sub.send.WriteGroup(ctx, st, group)
	unregister()
	if !stop() {
		// Cancelled, possibly after the last byte: the stream was reset.
		if !expired() && err == nil {
			sub.log.Debug("group cancelled", "group", w.seq)
		}
		return
	}
	if err != nil {
		if !IsStopped(err) {
			sub.log.Debug("group failed", "group", w.seq, "err", err)
			st.CancelWrite(sub.send.Code(err))
		}
		return
	}
	_ = st.Close()
}

// IsStopped reports whether a write failed because the peer stopped reading
// (it no longer wants that stream), which is not an error worth a reset.
func IsStopped(err error) bool {
	se, ok := errors.AsType[*transport.StreamError](err)
	return ok && se.Remote
}
