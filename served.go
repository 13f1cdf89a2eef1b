package moq

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/moqgo/moq/internal/lite"
)

// This file serves the peer's subscriptions: SUBSCRIBE_OK, then one stream
// per group, honouring the subscriber's priority, group order, max latency
// and start and end groups, and their changes by SUBSCRIBE_UPDATE.
//
// Max latency follows the draft's expiration rule on the track's cache clock
// (GroupConsumer.Created): a group expires once a newer group (by sequence)
// exists that was cached more than the max latency after it. An expired
// group is not started, and one being written is reset with ErrOld; both are
// reported with SUBSCRIBE_DROP (code ErrOld).
//
// With an end group the subscription ends (FIN) once every group from the
// start to the end is accounted for: written, reset, or reported dropped.
// Groups still missing when a group past the end arrives or the track ends
// are reported dropped with code 0 (unavailable).

// maxAccountedGroups bounds the record of the groups an unbounded
// subscription has served; older entries are forgotten and count as served
// should an end group be set later.
const maxAccountedGroups = 4096

// errExpired is the cause that cancels a group past the max latency.
var errExpired = errors.New("moq: group expired")

// served is one subscription of the peer that this session serves.
type served struct {
	s     *Session
	id    uint64
	track *TrackConsumer // read by the serving loop only
	cs    *controlStream
	log   *slog.Logger
	done  chan struct{} // closed when serving ends

	wmu sync.Mutex // serialises the replies written on cs

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
	item    *priorityItem // nil until the stream is open
	cancel  context.CancelCauseFunc
}

func newServed(s *Session, msg *lite.Subscribe, track *TrackConsumer, cs *controlStream) *served {
	sv := &served{
		s:          s,
		id:         msg.ID,
		track:      track,
		cs:         cs,
		log:        s.log.With("id", msg.ID, "broadcast", msg.Broadcast, "track", msg.Track),
		done:       make(chan struct{}),
		priority:   msg.Priority,
		ordered:    msg.Ordered,
		maxLatency: msg.MaxLatency,
		accounted:  make(map[uint64]struct{}),
		streams:    make(map[*groupWriter]struct{}),
	}
	sv.gen, sv.genCancel = context.WithCancel(context.Background())
	switch {
	case msg.StartGroup.Valid:
		sv.start, sv.hasStart = msg.StartGroup.Seq, true
	default:
		// New subscriptions start at the newest group.
		if latest, ok := track.Latest(); ok {
			sv.start, sv.hasStart = latest, true
		}
	}
	if sv.hasStart {
		track.StartAt(sv.start)
	}
	if msg.EndGroup.Valid {
		sv.end, sv.hasEnd = msg.EndGroup.Seq, true
	}
	return sv
}

// okLocked describes the subscription as SUBSCRIBE_OK does.
func (sv *served) okLocked() *lite.SubscribeOk {
	ok := &lite.SubscribeOk{Priority: sv.priority, Ordered: sv.ordered, MaxLatency: sv.maxLatency}
	if sv.hasStart {
		ok.StartGroup = lite.OptGroup{Seq: sv.start, Valid: true}
	}
	if sv.hasEnd {
		ok.EndGroup = lite.OptGroup{Seq: sv.end, Valid: true}
	}
	return ok
}

// reply writes one reply on the subscribe stream.
func (sv *served) reply(ok *lite.SubscribeOk, drop *lite.SubscribeDrop) error {
	sv.wmu.Lock()
	defer sv.wmu.Unlock()
	b, err := lite.AppendSubscribeResponse(sv.cs.buf[:0], ok, drop, sv.s.version)
	if err != nil {
		return err
	}
	return sv.cs.flush(b)
}

// drop reports the groups start..end (inclusive) as not delivered. Versions
// before lite-03 cannot say so; their subscriptions never ask for what
// makes groups drop.
func (sv *served) drop(start, end uint64, code error) {
	if sv.s.version < lite.Lite03 {
		return
	}
	var c uint64
	if code != nil {
		c = uint64(ErrorCode(code))
	}
	sv.log.Debug("dropping groups", "start", start, "end", end, "err", code)
	_ = sv.reply(nil, &lite.SubscribeDrop{Start: start, End: end, Error: c})
}

// signalLocked wakes the serving loop and the expiry watcher.
func (sv *served) signalLocked() {
	sv.genCancel()
	sv.gen, sv.genCancel = context.WithCancel(context.Background())
}

// update applies a SUBSCRIBE_UPDATE.
func (sv *served) update(u *lite.SubscribeUpdate) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if u.Priority != sv.priority || u.Ordered != sv.ordered {
		sv.priority, sv.ordered = u.Priority, u.Ordered
		for w := range sv.streams {
			if w.item != nil {
				w.item.setOrder(sv.priority, sv.ordered)
			}
		}
	}
	sv.maxLatency = u.MaxLatency
	if u.StartGroup.Valid && (!sv.hasStart || u.StartGroup.Seq != sv.start) {
		next := u.StartGroup.Seq
		if sv.hasStart && next < sv.start {
			sv.backfill = append(sv.backfill, next, sv.start)
		}
		sv.start, sv.hasStart, sv.moved = next, true, true
	}
	sv.end, sv.hasEnd = u.EndGroup.Seq, u.EndGroup.Valid
	sv.countLocked()
	sv.signalLocked()
}

// countLocked recounts the accounted groups in [start, end].
func (sv *served) countLocked() {
	sv.inRange = 0
	if !sv.hasEnd || !sv.hasStart {
		return
	}
	for seq := range sv.accounted {
		if seq >= sv.start && seq <= sv.end {
			sv.inRange++
		}
	}
}

// apply hands the loop the changes made by updates: the new start group, if
// it moved, and the cached groups below a lowered start to serve.
func (sv *served) apply() (gen context.Context, startAt uint64, moved bool, backfill []*GroupConsumer) {
	sv.mu.Lock()
	gen, startAt, moved = sv.gen, sv.start, sv.moved
	sv.moved = false
	ranges := sv.backfill
	sv.backfill = nil
	sv.mu.Unlock()
	for i := 0; i+1 < len(ranges); i += 2 {
		backfill = append(backfill, sv.track.state.cachedBetween(ranges[i], ranges[i+1])...)
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
func (sv *served) admit(g *GroupConsumer) verdict {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	seq := g.Sequence()
	if !sv.hasStart {
		// The subscription started before the track had a group.
		sv.start, sv.hasStart = seq, true
	}
	if !sv.seen || seq > sv.highest {
		sv.highest, sv.seen = seq, true
	}
	if seq < sv.start || (sv.hasEnd && seq > sv.end) {
		return skip
	}
	if _, done := sv.accounted[seq]; done || seq < sv.forgotten {
		return skip // already served: a lowered start can reach it again
	}
	sv.accounted[seq] = struct{}{}
	if sv.hasEnd {
		sv.inRange++
	} else if len(sv.accounted) > 2*maxAccountedGroups {
		sv.forgetLocked(seq)
	}
	if sv.maxLatency > 0 && sv.expired(seq, g.Created(), sv.maxLatency) {
		return expire
	}
	return serve
}

// forgetLocked drops the oldest half of the accounted groups.
func (sv *served) forgetLocked(newest uint64) {
	if newest < maxAccountedGroups {
		return
	}
	sv.forgotten = max(sv.forgotten, newest-maxAccountedGroups)
	for seq := range sv.accounted {
		if seq < sv.forgotten {
			delete(sv.accounted, seq)
		}
	}
}

// expired reports whether the group seq cached at created has expired: a
// newer group exists that was cached more than maxLatency after it.
func (sv *served) expired(seq uint64, created time.Time, maxLatency time.Duration) bool {
	newest, newestCreated, ok := sv.track.state.newest()
	return ok && isExpired(seq, created, newest, newestCreated, maxLatency)
}

// isExpired is the expiration rule: a group expires once the newest group has
// a higher sequence and was cached more than maxLatency after it.
func isExpired(seq uint64, created time.Time, newest uint64, newestCreated time.Time, maxLatency time.Duration) bool {
	return maxLatency > 0 && newest > seq && newestCreated.Sub(created) > maxLatency
}

// complete reports whether every wanted group is accounted for, or a group
// past the end arrived (so the missing ones are taken as lost).
func (sv *served) complete() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	switch {
	case !sv.hasEnd:
		return false
	case sv.seen && sv.highest > sv.end:
		return true
	case !sv.hasStart:
		return false
	case sv.start > sv.end:
		return true
	}
	covered := sv.inRange
	if sv.forgotten > sv.start {
		covered += min(sv.forgotten, sv.end+1) - sv.start
	}
	return covered > sv.end-sv.start
}

// missing returns the ranges of [start, end] not accounted for, as
// inclusive start/end pairs.
func (sv *served) missing() [][2]uint64 {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if !sv.hasEnd || !sv.hasStart {
		return nil
	}
	return gaps(sv.accounted, max(sv.start, sv.forgotten), sv.end)
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

// serveTrack writes the track's groups until the subscription is complete
// (nil) or fails. At most maxGroupsInFlight group streams are open at once;
// later groups wait in the track's cache.
func (s *Session) serveTrack(ctx context.Context, sv *served) error {
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
		sv.watchLatency(groupCtx)
	}()

	slots := make(chan struct{}, maxGroupsInFlight)
	start := func(g *GroupConsumer) error {
		switch sv.admit(g) {
		case skip:
			return nil
		case expire:
			sv.drop(g.Sequence(), g.Sequence(), ErrOld)
			return nil
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		writers.Add(1)
		go func() {
			defer writers.Done()
			defer func() { <-slots }()
			s.serveGroup(groupCtx, sv, g)
		}()
		return nil
	}
	for {
		gen, startAt, moved, backfill := sv.apply()
		if moved {
			sv.track.StartAt(startAt)
		}
		for _, g := range backfill {
			if err := start(g); err != nil {
				return err
			}
		}
		if sv.complete() {
			break
		}
		wait, cancelWait := context.WithCancel(ctx)
		stop := context.AfterFunc(gen, cancelWait)
		group, err := sv.track.NextGroup(wait)
		stop()
		cancelWait()
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if gen.Err() != nil {
				continue // an update arrived
			}
			return err
		}
		if group == nil {
			break // the track finished
		}
		if err := start(group); err != nil {
			return err
		}
	}
	// The end must not overtake the groups.
	writers.Wait()
	for _, gap := range sv.missing() {
		sv.drop(gap[0], gap[1], nil)
	}
	return nil
}

// watchLatency resets the group streams that expire while being written: it
// checks them whenever a newer group arrives or an update changes the max
// latency.
func (sv *served) watchLatency(ctx context.Context) {
	var last uint64
	have := false
	for {
		sv.mu.Lock()
		gen, maxLatency := sv.gen, sv.maxLatency
		sv.mu.Unlock()
		if maxLatency == 0 {
			// Nothing expires until an update sets a max latency.
			select {
			case <-ctx.Done():
				return
			case <-gen.Done():
				continue
			}
		}
		sv.expireWriters(maxLatency)
		wait, cancelWait := context.WithCancel(ctx)
		stop := context.AfterFunc(gen, cancelWait)
		seq, _, err := sv.track.state.waitNewer(wait, last, have)
		stop()
		cancelWait()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNoNewer):
			// Only a lower max latency can expire more now.
			select {
			case <-ctx.Done():
				return
			case <-gen.Done():
			}
		case err == nil:
			last, have = seq, true
		}
	}
}

// expireWriters cancels the group streams that have expired.
func (sv *served) expireWriters(maxLatency time.Duration) {
	newest, newestCreated, ok := sv.track.state.newest()
	if !ok {
		return
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	for w := range sv.streams {
		if isExpired(w.seq, w.created, newest, newestCreated, maxLatency) {
			w.cancel(errExpired)
		}
	}
}

// serveGroup writes one group on its own unidirectional stream.
func (s *Session) serveGroup(ctx context.Context, sv *served, group *GroupConsumer) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &groupWriter{seq: group.Sequence(), created: group.Created(), cancel: cancel}
	sv.mu.Lock()
	sv.streams[w] = struct{}{}
	sv.mu.Unlock()
	unregister := func() {
		sv.mu.Lock()
		delete(sv.streams, w)
		sv.mu.Unlock()
		if w.item != nil {
			w.item.remove()
		}
	}
	expired := func() bool {
		if !errors.Is(context.Cause(ctx), errExpired) {
			return false
		}
		sv.drop(w.seq, w.seq, ErrOld)
		return true
	}

	st, err := s.conn.OpenUniStream(ctx)
	if err != nil {
		unregister()
		expired()
		return
	}
	sv.mu.Lock()
	w.item = s.prio.insert(sv.priority, sv.ordered, w.seq, st)
	sv.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		code := ErrCancel
		if errors.Is(context.Cause(ctx), errExpired) {
			code = ErrOld
		}
		st.CancelWrite(ErrorCode(code))
	})

	err = s.writeGroup(ctx, st, sv.id, group)
	unregister()
	if !stop() {
		// Cancelled, possibly after the last byte: the stream was reset.
		if !expired() && err == nil {
			sv.log.Debug("group cancelled", "group", w.seq)
		}
		return
	}
	if err != nil {
		if !isStreamStopped(err) {
			sv.log.Debug("group failed", "group", w.seq, "err", err)
			st.CancelWrite(ErrorCode(err))
		}
		return
	}
	_ = st.Close()
}

// serveSubscribe answers one SUBSCRIBE: SUBSCRIBE_OK, then one stream per
// group until the subscription is complete or the peer cancels it.
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

	sv := newServed(s, &msg, track, cs)
	s.mu.Lock()
	s.served[sv] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.served, sv)
		s.mu.Unlock()
		close(sv.done)
	}()

	sv.mu.Lock()
	ok := sv.okLocked()
	sv.mu.Unlock()
	if err := sv.reply(ok, nil); err != nil {
		cs.reset(ErrCancel)
		return
	}

	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	peerDone := make(chan struct{})
	if !s.spawn(func() {
		defer close(peerDone)
		s.readSubscribeUpdates(sv, cancel)
	}) {
		cs.reset(ErrCancel)
		return
	}

	err = s.serveTrack(ctx, sv)
	switch {
	case err == nil:
		// Give the peer time to read the last groups before the end, then
		// wait for it to close its side in answer, so that a session closing
		// right after does not cut the end off.
		waitFor(ctx.Done(), trackEndGrace)
		sv.wmu.Lock()
		_ = cs.st.Close()
		sv.wmu.Unlock()
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
// the subscription, which cancels it. From lite-03 on each update is
// answered with a SUBSCRIBE_OK describing the subscription as it now is.
func (s *Session) readSubscribeUpdates(sv *served, cancel context.CancelCauseFunc) {
	for {
		var update lite.SubscribeUpdate
		err := sv.cs.readMessage(&update, s.version, "SUBSCRIBE_UPDATE")
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
		sv.update(&update)
		sv.log.Debug("subscription updated", "priority", update.Priority, "ordered", update.Ordered,
			"max_latency", update.MaxLatency, "start", update.StartGroup, "end", update.EndGroup)
		if s.version >= lite.Lite03 {
			sv.mu.Lock()
			ok := sv.okLocked()
			sv.mu.Unlock()
			_ = sv.reply(ok, nil)
		}
	}
}
