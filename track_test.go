package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// liveGroups counts the cached groups that were not evicted.
func liveGroups(p *TrackProducer) int {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.groups {
		if g != nil {
			n++
		}
	}
	return n
}

// firstLiveSequence returns the sequence of the oldest cached group.
func firstLiveSequence(t *testing.T, p *TrackProducer) uint64 {
	t.Helper()
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g != nil {
			return g.sequence
		}
	}
	t.Fatal("no live group")
	return 0
}

// trackOffset returns how many groups were trimmed from the cache front.
func trackOffset(p *TrackProducer) int {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset
}

// cached reports whether the sequence is a live cached group, the set the
// duplicate check uses.
func cached(p *TrackProducer, seq uint64) bool {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.bySeq[seq]
	return ok
}

func newTestTrack(t *testing.T) *TrackProducer {
	t.Helper()
	p := NewTrack(Track{Name: "test"})
	t.Cleanup(p.Close)
	return p
}

// appendGroups appends n groups, closing their handles at the end of the
// test.
func appendGroups(t *testing.T, p *TrackProducer, n int) {
	t.Helper()
	for range n {
		g, err := p.AppendGroup()
		noErr(t, "AppendGroup", err)
		t.Cleanup(g.Close)
	}
}

func createGroup(t *testing.T, p *TrackProducer, seq uint64) *GroupProducer {
	t.Helper()
	g, err := p.CreateGroup(seq)
	noErr(t, fmt.Sprintf("CreateGroup(%d)", seq), err)
	t.Cleanup(g.Close)
	return g
}

func consume(t *testing.T, p *TrackProducer) *TrackConsumer {
	t.Helper()
	c := p.Consume()
	t.Cleanup(c.Close)
	return c
}

const pastCacheAge = DefaultCacheAge + time.Second

func TestTrackEvictExpiredGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		appendGroups(t, p, 3) // 0, 1, 2
		if n, off := liveGroups(p), trackOffset(p); n != 3 || off != 0 {
			t.Fatalf("live %d offset %d, want 3 and 0", n, off)
		}

		time.Sleep(pastCacheAge)
		appendGroups(t, p, 1) // 3 triggers eviction

		// 0, 1 and 2 expired; 3 is the max and stays. The leading
		// tombstones were trimmed.
		if n, first, off := liveGroups(p), firstLiveSequence(t, p), trackOffset(p); n != 1 || first != 3 || off != 3 {
			t.Fatalf("live %d first %d offset %d, want 1, 3, 3", n, first, off)
		}
		for seq, want := range []bool{false, false, false, true} {
			if cached(p, uint64(seq)) != want {
				t.Fatalf("cached(%d) = %v", seq, !want)
			}
		}
	})
}

func TestTrackEvictKeepsMaxSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		appendGroups(t, p, 1) // 0
		time.Sleep(pastCacheAge)
		appendGroups(t, p, 1) // 1; 0 expired

		if n, first, off := liveGroups(p), firstLiveSequence(t, p), trackOffset(p); n != 1 || first != 1 || off != 1 {
			t.Fatalf("live %d first %d offset %d, want 1, 1, 1", n, first, off)
		}
	})
}

func TestTrackNoEvictionWhenFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		appendGroups(t, p, 3)
		if n, off := liveGroups(p), trackOffset(p); n != 3 || off != 0 {
			t.Fatalf("live %d offset %d, want 3 and 0", n, off)
		}
	})
}

func TestTrackConsumerSkipsEvictedGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		appendGroups(t, p, 1) // 0
		c := consume(t, p)

		time.Sleep(pastCacheAge)
		appendGroups(t, p, 1) // 1; 0 evicted

		if g := nextGroupNow(t, c); g.Sequence() != 1 {
			t.Fatalf("got group %d, want 1", g.Sequence())
		}
	})
}

func TestTrackOutOfOrderMaxSequenceAtFront(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		for _, seq := range []uint64{5, 3, 4} {
			createGroup(t, p, seq)
		}
		if latest, ok := p.Latest(); !ok || latest != 5 {
			t.Fatalf("Latest = %d, %v; want 5", latest, ok)
		}

		time.Sleep(pastCacheAge)
		appendGroups(t, p, 1) // 6 is the new max; 3, 4 and 5 expired

		if n, first := liveGroups(p), firstLiveSequence(t, p); n != 1 || first != 6 {
			t.Fatalf("live %d first %d, want 1 and 6", n, first)
		}
		for seq, want := range map[uint64]bool{3: false, 4: false, 5: false, 6: true} {
			if cached(p, seq) != want {
				t.Fatalf("cached(%d) = %v", seq, !want)
			}
		}
	})
}

func TestTrackMaxSequenceAtFrontBlocksTrim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		createGroup(t, p, 5)

		time.Sleep(pastCacheAge)
		createGroup(t, p, 3) // late; 5 is still the max and protected
		if n, off := liveGroups(p), trackOffset(p); n != 2 || off != 0 {
			t.Fatalf("live %d offset %d, want 2 and 0", n, off)
		}

		time.Sleep(pastCacheAge)
		createGroup(t, p, 2) // 3 expired; 5 at the front blocks trimming

		if n, off := liveGroups(p), trackOffset(p); n != 2 || off != 0 {
			t.Fatalf("live %d offset %d, want 2 and 0", n, off)
		}
		for seq, want := range map[uint64]bool{5: true, 3: false, 2: true} {
			if cached(p, seq) != want {
				t.Fatalf("cached(%d) = %v", seq, !want)
			}
		}

		// A new consumer reads through the hole, starting with 5.
		c := consume(t, p)
		if g := nextGroupNow(t, c); g.Sequence() != 5 {
			t.Fatalf("got group %d, want 5", g.Sequence())
		}
		if g := nextGroupNow(t, c); g.Sequence() != 2 {
			t.Fatalf("got group %d, want 2", g.Sequence())
		}
	})
}

func TestTrackSetCacheAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		p.SetCacheAge(time.Second)
		appendGroups(t, p, 2)
		time.Sleep(1500 * time.Millisecond)
		appendGroups(t, p, 1)
		if n := liveGroups(p); n != 1 {
			t.Fatalf("live %d, want 1 after a 1s cache age", n)
		}
		// An evicted sequence can be created again.
		createGroup(t, p, 0)
	})
}

func TestTrackAppendFinishCannotBeRewritten(t *testing.T) {
	p := newTestTrack(t)
	noErr(t, "Finish", p.Finish()) // empty track: 0 groups
	isErr(t, "second Finish", p.Finish(), ErrClosed)
	_, err := p.AppendGroup()
	isErr(t, "AppendGroup", err, ErrClosed)
	n, err := consume(t, p).Finished(doneCtx)
	if err != nil || n != 0 {
		t.Fatalf("Finished = %d, %v; want 0", n, err)
	}
}

func TestTrackFinishAfterGroups(t *testing.T) {
	p := newTestTrack(t)
	appendGroups(t, p, 1)
	noErr(t, "Finish", p.Finish())
	isErr(t, "second Finish", p.Finish(), ErrClosed)
	_, err := p.AppendGroup()
	isErr(t, "AppendGroup", err, ErrClosed)
}

func TestTrackFinishAtValidatesAndFreezesToMax(t *testing.T) {
	p := newTestTrack(t)
	isErr(t, "FinishAt on empty track", p.FinishAt(0), ErrClosed)
	createGroup(t, p, 5)

	isErr(t, "FinishAt(4)", p.FinishAt(4), ErrClosed)
	isErr(t, "FinishAt(10)", p.FinishAt(10), ErrClosed)
	noErr(t, "FinishAt(5)", p.FinishAt(5))

	p.state.mu.Lock()
	final, has := p.state.finalSeq, p.state.hasFinal
	p.state.mu.Unlock()
	if !has || final != 6 {
		t.Fatalf("final = %d, %v; want 6", final, has)
	}

	isErr(t, "FinishAt(5) again", p.FinishAt(5), ErrClosed)
	createGroup(t, p, 4) // older groups may still arrive
	_, err := p.CreateGroup(5)
	isErr(t, "CreateGroup(5)", err, ErrDuplicate)
	_, err = p.CreateGroup(6)
	isErr(t, "CreateGroup(6)", err, ErrClosed)
}

func TestTrackNextGroupFinishesWithoutWaitingForGaps(t *testing.T) {
	p := newTestTrack(t)
	createGroup(t, p, 1)
	noErr(t, "FinishAt", p.FinishAt(1))

	c := consume(t, p)
	if g := nextGroupNow(t, c); g.Sequence() != 1 {
		t.Fatalf("got group %d", g.Sequence())
	}
	g, err := c.NextGroup(doneCtx)
	if g != nil || err != nil {
		t.Fatalf("NextGroup = %v, %v; want the end without waiting for group 0", g, err)
	}
}

func TestTrackGetGroupFinishesWithoutWaitingForGaps(t *testing.T) {
	p := newTestTrack(t)
	createGroup(t, p, 1)
	noErr(t, "FinishAt", p.FinishAt(1))

	c := consume(t, p)
	// Group 0 is below the final sequence and could still arrive.
	if _, err := c.GetGroup(doneCtx, 0); !wouldBlock(err) {
		t.Fatalf("GetGroup(0) should block, got %v", err)
	}
	g, err := c.GetGroup(doneCtx, 2)
	if g != nil || err != nil {
		t.Fatalf("GetGroup(2) = %v, %v; want nil, nil", g, err)
	}
}

func TestTrackAppendGroupBoundsExceeded(t *testing.T) {
	p := newTestTrack(t)
	p.state.mu.Lock()
	p.state.maxSeq, p.state.hasMax = math.MaxUint64, true
	p.state.mu.Unlock()

	_, err := p.AppendGroup()
	isErr(t, "AppendGroup", err, ErrBoundsExceeded)
	isErr(t, "WriteFrame", p.WriteFrame(nil), ErrBoundsExceeded)
	isErr(t, "Finish", p.Finish(), ErrBoundsExceeded)
}

func TestTrackConsumerProduce(t *testing.T) {
	p := newTestTrack(t)
	appendGroups(t, p, 1)
	c := consume(t, p)

	got, err := c.Produce()
	noErr(t, "Produce", err)
	defer got.Close()
	if !got.SameTrack(p) {
		t.Fatal("Produce returned a different track")
	}

	// Groups written through the upgraded producer reach new consumers.
	clone := got.Clone()
	appendGroups(t, clone, 1)
	clone.Close()
	sub := consume(t, p)
	nextGroupNow(t, sub) // 0
	nextGroupNow(t, sub) // 1, written through the upgraded producer
}

func TestTrackConsumerProduceAfterDrop(t *testing.T) {
	p := NewTrack(Track{Name: "test"})
	c := consume(t, p)
	p.Close()
	_, err := c.Produce()
	isErr(t, "Produce", err, ErrDropped)
}

func TestTrackConsumerProduceAfterFinishAndDrop(t *testing.T) {
	p := NewTrack(Track{Name: "test"})
	c := consume(t, p)
	noErr(t, "Finish", p.Finish())
	p.Close()
	_, err := c.Produce()
	isErr(t, "Produce", err, ErrDropped)
	if err := trackEnded(t, c); err != nil {
		t.Fatalf("a finished track stays finished after its producer goes: %v", err)
	}
}

func TestTrackConsumerProduceAfterAbort(t *testing.T) {
	p := NewTrack(Track{Name: "test"})
	c := consume(t, p)
	noErr(t, "Abort", p.Abort(ErrCancel))
	p.Close()
	_, err := c.Produce()
	isErr(t, "Produce", err, ErrCancel)
	if errors.Is(err, ErrDropped) {
		t.Fatal("abort error must win over ErrDropped")
	}
}

func TestTrackConsumerProduceKeepsAlive(t *testing.T) {
	p := NewTrack(Track{Name: "test"})
	c := consume(t, p)
	upgraded, err := c.Produce()
	noErr(t, "Produce", err)
	p.Close()

	trackOpen(t, c) // the upgraded producer keeps it open
	upgraded.Close()
	trackFailed(t, c, ErrDropped)
}

func TestTrackDroppedWakesEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewTrack(Track{Name: "test"})
		clone := p.Clone()
		c := consume(t, p)

		cl := c.Clone()
		t.Cleanup(cl.Close)
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		wg.Go(func() {
			_, err := cl.NextGroup(context.Background())
			errs <- err
		})
		wg.Go(func() {
			_, err := c.GetGroup(context.Background(), 7)
			errs <- err
		})
		wg.Go(func() { errs <- c.Closed(context.Background()) })
		synctest.Wait() // all three are durably blocked

		p.Close()
		p.Close() // idempotent: the clone still holds the track
		synctest.Wait()
		if len(errs) != 0 {
			t.Fatal("a waiter woke up while a clone was still open")
		}
		clone.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			isErr(t, "waiter", err, ErrDropped)
		}
		if !p.IsClosed() {
			t.Fatal("IsClosed = false after drop")
		}
	})
}

func TestTrackAbortPropagates(t *testing.T) {
	p := newTestTrack(t)
	unfinished := createGroup(t, p, 0)
	noErr(t, "WriteFrame", unfinished.WriteFrame([]byte("a")))
	noErr(t, "WriteFrame", p.WriteFrame([]byte("b"))) // group 1, finished

	c := consume(t, p)
	g0 := nextGroupNow(t, c)
	g1 := nextGroupNow(t, c)
	noErr(t, "Abort", p.Abort(ErrTimeout))
	noErr(t, "Abort again", p.Abort(ErrCancel)) // the first abort wins

	_, err := c.NextGroup(doneCtx)
	isErr(t, "NextGroup", err, ErrTimeout)
	trackFailed(t, c, ErrTimeout)
	_, err = c.Finished(doneCtx)
	isErr(t, "Finished", err, ErrTimeout)
	_, err = c.GetGroup(doneCtx, 9)
	isErr(t, "GetGroup", err, ErrTimeout)

	// The unfinished group fails after its frame; the finished one stays readable.
	if _, err := g0.ReadFrame(doneCtx); err != nil {
		t.Fatalf("ReadFrame of a complete frame: %v", err)
	}
	_, err = g0.ReadFrame(doneCtx)
	isErr(t, "unfinished group", err, ErrTimeout)
	isErr(t, "write to aborted group", unfinished.WriteFrame(nil), ErrTimeout)
	if data, err := g1.ReadFrame(doneCtx); err != nil || string(data) != "b" {
		t.Fatalf("finished group: %q, %v", data, err)
	}
	_, err = g1.ReadFrame(doneCtx)
	isErr(t, "finished group end", err, io.EOF)

	_, err = p.AppendGroup()
	isErr(t, "AppendGroup", err, ErrTimeout)
	isErr(t, "Finish", p.Finish(), ErrTimeout)
	if c.IsFinished() {
		t.Fatal("an aborted track reports IsFinished")
	}
	if !p.IsClosed() {
		t.Fatal("IsClosed = false after abort")
	}
}

func TestTrackAbortAfterFinishKeepsCleanEnd(t *testing.T) {
	p := newTestTrack(t)
	noErr(t, "WriteFrame", p.WriteFrame([]byte("x")))
	noErr(t, "Finish", p.Finish())
	noErr(t, "Abort", p.Abort(ErrCancel))
	c := consume(t, p)
	nextGroupNow(t, c)
	if g, err := c.NextGroup(doneCtx); g != nil || err != nil {
		t.Fatalf("NextGroup = %v, %v; want the end", g, err)
	}
	if err := trackEnded(t, c); err != nil {
		t.Fatalf("Closed = %v, want nil", err)
	}
}

func TestTrackClosedHandle(t *testing.T) {
	p := NewTrack(Track{Name: "test"})
	other := p.Clone()
	defer other.Close()
	p.Close()
	_, err := p.AppendGroup()
	isErr(t, "AppendGroup", err, ErrClosed)
	_, err = p.CreateGroup(3)
	isErr(t, "CreateGroup", err, ErrClosed)
	isErr(t, "WriteFrame", p.WriteFrame(nil), ErrClosed)
	isErr(t, "Finish", p.Finish(), ErrClosed)
	isErr(t, "FinishAt", p.FinishAt(0), ErrClosed)
	isErr(t, "Abort", p.Abort(nil), ErrClosed)
	if other.IsClosed() {
		t.Fatal("the remaining clone sees a closed track")
	}
}

func TestTrackDuplicateGroup(t *testing.T) {
	p := newTestTrack(t)
	createGroup(t, p, 3)
	_, err := p.CreateGroup(3)
	isErr(t, "CreateGroup(3) twice", err, ErrDuplicate)
	g, err := p.AppendGroup()
	noErr(t, "AppendGroup", err)
	defer g.Close()
	if g.Sequence() != 4 {
		t.Fatalf("AppendGroup = %d, want 4", g.Sequence())
	}
}

func TestTrackStartAt(t *testing.T) {
	p := newTestTrack(t)
	for _, seq := range []uint64{1, 5, 2, 7} {
		createGroup(t, p, seq)
	}
	c := consume(t, p)
	c.StartAt(5)
	var got []uint64
	for range 2 {
		got = append(got, nextGroupNow(t, c).Sequence())
	}
	if fmt.Sprint(got) != "[5 7]" {
		t.Fatalf("groups = %v, want [5 7]", got)
	}
	noGroupYet(t, c)
}

func TestTrackConsumerCloneKeepsPosition(t *testing.T) {
	p := newTestTrack(t)
	appendGroups(t, p, 3)
	c := consume(t, p)
	c.StartAt(1)
	nextGroupNow(t, c) // 1
	clone := c.Clone()
	defer clone.Close()
	if !clone.SameTrack(c) {
		t.Fatal("clone reads another track")
	}
	if g := nextGroupNow(t, clone); g.Sequence() != 2 {
		t.Fatalf("clone got %d, want 2", g.Sequence())
	}
	if g := nextGroupNow(t, c); g.Sequence() != 2 {
		t.Fatalf("original got %d, want 2", g.Sequence())
	}
}

func TestTrackGetGroupWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		c := consume(t, p)
		done := make(chan *GroupConsumer)
		go func() {
			g, err := c.GetGroup(context.Background(), 3)
			if err != nil {
				t.Error(err)
			}
			done <- g
		}()
		synctest.Wait()
		createGroup(t, p, 1)
		synctest.Wait() // still waiting for 3
		createGroup(t, p, 3)
		if g := <-done; g == nil || g.Sequence() != 3 {
			t.Fatalf("GetGroup = %v", g)
		}
	})
}

func TestTrackFinished(t *testing.T) {
	p := newTestTrack(t)
	c := consume(t, p)
	if _, err := c.Finished(doneCtx); !wouldBlock(err) {
		t.Fatalf("Finished should block, got %v", err)
	}
	appendGroups(t, p, 4)
	if c.IsFinished() {
		t.Fatal("IsFinished before Finish")
	}
	noErr(t, "Finish", p.Finish())
	if !c.IsFinished() {
		t.Fatal("IsFinished = false after Finish")
	}
	n, err := c.Finished(doneCtx)
	if err != nil || n != 4 {
		t.Fatalf("Finished = %d, %v; want 4", n, err)
	}
}

func TestTrackUsedUnused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		noErr(t, "Unused with no consumer", p.Unused(doneCtx))

		used := make(chan error)
		go func() { used <- p.Used(context.Background()) }()
		synctest.Wait()

		c := p.Consume()
		noErr(t, "Used", <-used)
		if err := p.Unused(doneCtx); !wouldBlock(err) {
			t.Fatalf("Unused should block, got %v", err)
		}

		clone := c.Clone()
		unused := make(chan error)
		go func() { unused <- p.Unused(context.Background()) }()
		synctest.Wait()
		c.Close()
		c.Close() // idempotent: the clone still counts
		synctest.Wait()
		select {
		case err := <-unused:
			t.Fatalf("Unused returned %v with a consumer left", err)
		default:
		}
		clone.Close()
		noErr(t, "Unused", <-unused)
	})
}

func TestTrackUsedFailsOnAbort(t *testing.T) {
	p := newTestTrack(t)
	noErr(t, "Abort", p.Abort(ErrUnauthorized))
	isErr(t, "Used", p.Used(doneCtx), ErrUnauthorized)
	c := consume(t, p)
	isErr(t, "Unused", p.Unused(doneCtx), ErrUnauthorized)
	if c.Info() != p.Info() {
		t.Fatal("Info differs")
	}
}

func TestTrackLatest(t *testing.T) {
	p := newTestTrack(t)
	c := consume(t, p)
	if _, ok := c.Latest(); ok {
		t.Fatal("Latest on an empty track")
	}
	createGroup(t, p, 9)
	createGroup(t, p, 4)
	if seq, ok := c.Latest(); !ok || seq != 9 {
		t.Fatalf("Latest = %d, %v", seq, ok)
	}
}

func TestTrackPayloadShared(t *testing.T) {
	p := newTestTrack(t)
	const consumers = 10
	var cs []*TrackConsumer
	for range consumers {
		cs = append(cs, consume(t, p))
	}
	payload := []byte("shared payload")
	noErr(t, "WriteFrame", p.WriteFrame(payload))
	for i, c := range cs {
		data, err := nextGroupNow(t, c).ReadFrame(doneCtx)
		noErr(t, "ReadFrame", err)
		if &data[0] != &payload[0] {
			t.Fatalf("consumer %d got a copy", i)
		}
	}
}

func TestTrackGarbageCollectedProducer(t *testing.T) {
	c := func() *TrackConsumer {
		p := NewTrack(Track{Name: "leaked"})
		return p.Consume() // p becomes unreachable without Close
	}()
	defer c.Close()
	eventually(t, func(ctx context.Context) bool {
		return errors.Is(c.Closed(ctx), ErrDropped)
	})
}

func TestTrackGarbageCollectedConsumer(t *testing.T) {
	p := newTestTrack(t)
	func() { _ = p.Consume() }() // never closed
	eventually(t, func(ctx context.Context) bool { return p.Unused(ctx) == nil })
}

func TestTrackConcurrentProducersAndConsumers(t *testing.T) {
	const (
		writers   = 8
		perWriter = 50
		readers   = 16
	)
	p := newTestTrack(t)
	var readersWG sync.WaitGroup
	counts := make([]int, readers)
	errs := make([]error, readers)
	for i := range readers {
		c := consume(t, p).Clone()
		t.Cleanup(c.Close)
		readersWG.Go(func() {
			for {
				g, err := c.NextGroup(context.Background())
				if err != nil || g == nil {
					errs[i] = err
					return
				}
				for {
					_, err := g.ReadFrame(context.Background())
					if err == io.EOF {
						break
					}
					if err != nil {
						errs[i] = err
						return
					}
				}
				counts[i]++
			}
		})
	}

	var writersWG sync.WaitGroup
	for w := range writers {
		wp := p.Clone()
		writersWG.Go(func() {
			defer wp.Close()
			for i := range perWriter {
				g, err := wp.CreateGroup(uint64(w*perWriter + i))
				if err != nil {
					t.Error(err)
					return
				}
				_ = g.WriteFrame([]byte{byte(i)})
				_ = g.Finish()
				g.Close()
			}
		})
	}
	writersWG.Wait()
	noErr(t, "Finish", p.Finish())
	readersWG.Wait()
	for i := range readers {
		noErr(t, "reader", errs[i])
		if counts[i] != writers*perWriter {
			t.Fatalf("reader %d saw %d groups, want %d", i, counts[i], writers*perWriter)
		}
	}
}
