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
	trackEndsNow(t, c) // without waiting for group 0
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
	if g != nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetGroup(2) = %v, %v; want ErrNotFound", g, err)
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
	trackEndsNow(t, c)
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
				if err == io.EOF {
					return
				}
				if err != nil {
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

// collectGroups ranges over c.Groups(ctx) to the end, without breaking, and
// returns the sequences and the errors it yielded.
func collectGroups(t *testing.T, ctx context.Context, c *TrackConsumer) (seqs []uint64, errs []error) {
	t.Helper()
	for g, err := range c.Groups(ctx) {
		if err != nil {
			if g != nil {
				t.Errorf("Groups yielded group %d with error %v", g.Sequence(), err)
			}
			errs = append(errs, err)
			if len(errs) > 1 {
				break // it should have stopped by itself: fail, not spin
			}
			continue // the iterator must stop by itself
		}
		seqs = append(seqs, g.Sequence())
	}
	return seqs, errs
}

func TestTrackGroupsIterator(t *testing.T) {
	tests := []struct {
		name    string
		groups  int
		end     func(p *TrackProducer)
		wantErr error // nil: a clean end, nothing yielded but the groups
	}{
		{"finished", 3, func(p *TrackProducer) { _ = p.Finish() }, nil},
		{"finished empty", 0, func(p *TrackProducer) { _ = p.Finish() }, nil},
		{"aborted after finish", 2, func(p *TrackProducer) { _ = p.Finish(); _ = p.Abort(ErrTimeout) }, nil},
		{"aborted", 2, func(p *TrackProducer) { _ = p.Abort(ErrTimeout) }, ErrTimeout},
		{"aborted with an app error", 1, func(p *TrackProducer) { _ = p.Abort(AppError(7)) }, AppError(7)},
		{"dropped", 2, func(p *TrackProducer) { p.Close() }, ErrDropped},
		// An abort whose reason wraps io.EOF is an error, not the end of
		// the track: only io.EOF itself ends the iteration.
		{"aborted with a wrapped io.EOF", 1, func(p *TrackProducer) { _ = p.Abort(fmt.Errorf("upstream: %w", io.EOF)) }, io.EOF},
		{"open", 2, func(*TrackProducer) {}, context.Canceled}, // the context ends it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestTrack(t)
			appendGroups(t, p, tt.groups)
			c := consume(t, p)
			tt.end(p)
			// doneCtx: every group already there is yielded, then the end.
			seqs, errs := collectGroups(t, doneCtx, c)
			if len(seqs) != tt.groups {
				t.Fatalf("yielded groups %v, want %d", seqs, tt.groups)
			}
			for i, seq := range seqs {
				if seq != uint64(i) {
					t.Fatalf("yielded groups %v, want 0..%d in order", seqs, tt.groups-1)
				}
			}
			checkIterEnd(t, errs, tt.wantErr)
		})
	}
}

func TestTrackGroupsBreak(t *testing.T) {
	p := newTestTrack(t)
	appendGroups(t, p, 3)
	c := consume(t, p)
	for g, err := range c.Groups(doneCtx) {
		noErr(t, "Groups", err)
		if g.Sequence() != 0 {
			t.Fatalf("first group %d", g.Sequence())
		}
		break
	}
	// Breaking consumed only the group yielded.
	if g := nextGroupNow(t, c); g.Sequence() != 1 {
		t.Fatalf("after break: group %d, want 1", g.Sequence())
	}
}

func TestTrackGroupsWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		c := consume(t, p)
		type result struct {
			seqs []uint64
			errs []error
		}
		done := make(chan result)
		go func() {
			seqs, errs := collectGroups(t, context.Background(), c)
			done <- result{seqs, errs}
		}()
		for range 3 {
			synctest.Wait() // the iterator waits for the next group
			appendGroups(t, p, 1)
		}
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("the iteration ended on an open track: %v", r)
		default:
		}
		noErr(t, "Finish", p.Finish())
		r := <-done
		if fmt.Sprint(r.seqs) != "[0 1 2]" || len(r.errs) != 0 {
			t.Fatalf("Groups yielded %v, errors %v", r.seqs, r.errs)
		}
	})
}

// TestTrackEnds checks how a track's sequence ends: io.EOF itself from
// NextGroup only at a clean end, ErrNotFound from GetGroup past it, and the
// abort error otherwise.
func TestTrackEnds(t *testing.T) {
	tests := []struct {
		name      string
		end       func(p *TrackProducer)
		wantNext  error // io.EOF is compared with ==
		wantPast  error // GetGroup(2), past the end
		finalSize uint64
	}{
		{"finished", func(p *TrackProducer) { _ = p.Finish() }, io.EOF, ErrNotFound, 2},
		{"finished at", func(p *TrackProducer) { _ = p.FinishAt(1) }, io.EOF, ErrNotFound, 2},
		{"finished then dropped", func(p *TrackProducer) { _ = p.Finish(); p.Close() }, io.EOF, ErrNotFound, 2},
		{"finished then aborted", func(p *TrackProducer) { _ = p.Finish(); _ = p.Abort(ErrCancel) }, io.EOF, ErrNotFound, 2},
		{"aborted", func(p *TrackProducer) { _ = p.Abort(ErrTimeout) }, ErrTimeout, ErrTimeout, 0},
		{"dropped", func(p *TrackProducer) { p.Close() }, ErrDropped, ErrDropped, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestTrack(t)
			appendGroups(t, p, 2)
			c := consume(t, p)
			nextGroupNow(t, c)
			nextGroupNow(t, c)
			tt.end(p)
			if tt.wantNext == io.EOF {
				trackEndsNow(t, c)
				trackEndsNow(t, c) // and stays ended
			} else {
				g, err := c.NextGroup(doneCtx)
				if g != nil || err == io.EOF {
					t.Fatalf("NextGroup = %v, %v; want an error, not the end", g, err)
				}
				isErr(t, "NextGroup", err, tt.wantNext)
			}
			g, err := c.GetGroup(doneCtx, 2)
			if g != nil {
				t.Fatalf("GetGroup(2) = group %d", g.Sequence())
			}
			isErr(t, "GetGroup(2)", err, tt.wantPast)
			// A cached group before the end is still there.
			if g, err := c.GetGroup(doneCtx, 1); err != nil || g.Sequence() != 1 {
				t.Fatalf("GetGroup(1) = %v, %v", g, err)
			}
		})
	}
}

func TestTrackNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		c := consume(t, p)
		if seq, created, ok := c.Newest(); ok || seq != 0 || !created.IsZero() {
			t.Fatalf("Newest of an empty track = %d, %v, %v", seq, created, ok)
		}
		start := time.Now()
		steps := []struct {
			create  func()
			wantSeq uint64
			wantAt  time.Duration // since start
		}{
			{func() { createGroup(t, p, 3) }, 3, 0},
			{func() { createGroup(t, p, 1) }, 3, 0}, // an older group changes nothing
			{func() { createGroup(t, p, 7) }, 7, 2 * time.Second},
			{func() { noErr(t, "WriteFrame", p.WriteFrame([]byte("x"))) }, 8, 3 * time.Second},
		}
		for i, s := range steps {
			if i > 0 {
				time.Sleep(time.Second)
			}
			s.create()
			seq, created, ok := c.Newest()
			if !ok || seq != s.wantSeq || !created.Equal(start.Add(s.wantAt)) {
				t.Fatalf("step %d: Newest = %d, %v, %v; want %d created at +%v", i, seq, created.Sub(start), ok, s.wantSeq, s.wantAt)
			}
			if latest, _ := c.Latest(); latest != seq {
				t.Fatalf("step %d: Latest %d, Newest %d", i, latest, seq)
			}
		}
		// The newest group's time is the one its consumers see.
		g, err := c.GetGroup(doneCtx, 8)
		noErr(t, "GetGroup", err)
		if _, created, _ := c.Newest(); !g.Created().Equal(created) {
			t.Fatalf("Newest time %v, group created %v", created, g.Created())
		}
	})
}

func TestTrackWaitNewer(t *testing.T) {
	tests := []struct {
		name     string
		before   []uint64 // groups created before waiting
		finished bool     // the track is finished before waiting
		next     uint64
		wake     func(p *TrackProducer) // nil: WaitNewer must not wait
		wantSeq  uint64
		wantErr  error // io.EOF is compared with ==
	}{
		{"already newer", []uint64{5}, false, 3, nil, 5, nil},
		{"exactly next", []uint64{5}, false, 5, nil, 5, nil},
		{"first group", nil, false, 0, func(p *TrackProducer) { _, _ = p.AppendGroup() }, 0, nil},
		{"newer group", []uint64{5}, false, 6, func(p *TrackProducer) { _, _ = p.CreateGroup(4); _, _ = p.CreateGroup(9) }, 9, nil},
		{"finished", []uint64{5}, false, 6, func(p *TrackProducer) { _ = p.Finish() }, 5, io.EOF},
		{"aborted", []uint64{5}, false, 6, func(p *TrackProducer) { _ = p.Abort(ErrTimeout) }, 5, io.EOF},
		{"producers gone", []uint64{5}, false, 6, func(p *TrackProducer) { p.Close() }, 5, io.EOF},
		{"already finished", nil, true, 0, nil, 0, io.EOF},
		{"finished but newer", []uint64{5}, true, 5, nil, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newTestTrack(t)
				for _, seq := range tt.before {
					createGroup(t, p, seq)
				}
				if tt.finished {
					noErr(t, "Finish", p.Finish())
				}
				c := consume(t, p)
				type result struct {
					seq     uint64
					created time.Time
					err     error
				}
				done := make(chan result, 1)
				go func() {
					seq, created, err := c.WaitNewer(context.Background(), tt.next)
					done <- result{seq, created, err}
				}()
				synctest.Wait()
				if tt.wake != nil {
					if len(done) != 0 {
						t.Fatalf("WaitNewer(%d) returned %+v without waiting", tt.next, <-done)
					}
					time.Sleep(time.Second)
					tt.wake(p)
				}
				r := <-done
				if tt.wantErr == io.EOF {
					if r.err != io.EOF {
						t.Fatalf("WaitNewer(%d) = %+v, want io.EOF", tt.next, r)
					}
					return
				}
				noErr(t, "WaitNewer", r.err)
				seq, created, _ := c.Newest()
				if r.seq != tt.wantSeq || r.seq != seq || !r.created.Equal(created) {
					t.Fatalf("WaitNewer(%d) = %d at %v; want %d, as Newest (%d at %v)", tt.next, r.seq, r.created, tt.wantSeq, seq, created)
				}
			})
		})
	}
}

func TestTrackWaitNewerContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		createGroup(t, p, 0)
		c := consume(t, p)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		_, _, err := c.WaitNewer(ctx, 1)
		isErr(t, "WaitNewer", err, context.DeadlineExceeded)
		if waited := time.Since(start); waited != time.Minute {
			t.Fatalf("WaitNewer returned after %v, want the deadline", waited)
		}
	})
}

// sequences returns the sequences of groups.
func sequences(groups []*GroupConsumer) []uint64 {
	out := make([]uint64, len(groups))
	for i, g := range groups {
		out[i] = g.Sequence()
	}
	return out
}

func TestTrackCachedGroups(t *testing.T) {
	p := newTestTrack(t)
	for _, seq := range []uint64{5, 1, 3, 9, 7, 2} {
		g := createGroup(t, p, seq)
		noErr(t, "WriteFrame", g.WriteFrame(fmt.Appendf(nil, "g%d", seq)))
	}
	c := consume(t, p)
	// The consumer's position and StartAt do not matter.
	for range 6 {
		nextGroupNow(t, c)
	}
	c.StartAt(8)

	tests := []struct {
		from, to uint64
		want     string
	}{
		{0, math.MaxUint64, "[1 2 3 5 7 9]"},
		{3, 7, "[3 5]"}, // from is included, to is not
		{3, 8, "[3 5 7]"},
		{4, 5, "[]"},
		{4, 4, "[]"},
		{7, 3, "[]"},
		{9, 10, "[9]"},
		{10, math.MaxUint64, "[]"},
		{0, 1, "[]"},
	}
	for _, tt := range tests {
		groups := c.CachedGroups(tt.from, tt.to)
		if got := fmt.Sprint(sequences(groups)); got != tt.want {
			t.Errorf("CachedGroups(%d, %d) = %s, want %s", tt.from, tt.to, got, tt.want)
		}
		// Each group is read from its first frame.
		for _, g := range groups {
			data, err := g.ReadFrame(doneCtx)
			if err != nil || string(data) != fmt.Sprintf("g%d", g.Sequence()) {
				t.Errorf("group %d: ReadFrame = %q, %v", g.Sequence(), data, err)
			}
		}
	}
}

func TestTrackCachedGroupsSkipsEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestTrack(t)
		for _, seq := range []uint64{4, 0, 2} {
			createGroup(t, p, seq)
		}
		c := consume(t, p)
		time.Sleep(pastCacheAge)
		createGroup(t, p, 1) // 0 and 2 expired; 4, the newest, stays
		if got := fmt.Sprint(sequences(c.CachedGroups(0, 10))); got != "[1 4]" {
			t.Fatalf("CachedGroups = %s, want [1 4]", got)
		}
	})
}

func TestTrackTimescale(t *testing.T) {
	info := Track{Name: "video", Priority: 2, Timescale: 90000}
	p := NewTrack(info)
	t.Cleanup(p.Close)
	if p.Info() != info || consume(t, p).Info() != info {
		t.Fatalf("Info = %+v, want %+v", p.Info(), info)
	}

	// Through a broadcast, the track keeps its own description.
	b := newTestBroadcast(t)
	noErr(t, "InsertTrack", b.InsertTrack(p))
	if got := subscribe(t, b.Consume(), "video").Info(); got != info {
		t.Fatalf("subscribed Info = %+v, want %+v", got, info)
	}

	// A requested track is described by its first subscriber.
	d := newTestDynamic(t, b)
	want := Track{Name: "audio", Priority: 1, Timescale: 48000}
	sub, err := b.Consume().SubscribeTrack(want)
	noErr(t, "SubscribeTrack", err)
	t.Cleanup(sub.Close)
	if got := requestNow(t, d).Info(); got != want {
		t.Fatalf("requested Info = %+v, want %+v", got, want)
	}
}

// TestTrackAccepted: created tracks are confirmed at once; a requested track
// waits for Accept, its first group or its end, and fails with the abort
// error or ErrDropped when it ends unconfirmed.
func TestTrackAccepted(t *testing.T) {
	if err := consume(t, newTestTrack(t)).Accepted(doneCtx); err != nil {
		t.Fatalf("a new track: %v", err)
	}
	request := func(t *testing.T) (*TrackProducer, *TrackConsumer) {
		b := newTestBroadcast(t)
		d := b.Dynamic()
		t.Cleanup(d.Close)
		c, err := b.Consume().SubscribeTrack(Track{Name: "t"})
		noErr(t, "SubscribeTrack", err)
		t.Cleanup(c.Close)
		p, err := d.RequestedTrack(doneCtx)
		noErr(t, "RequestedTrack", err)
		t.Cleanup(p.Close)
		return p, c
	}
	confirm := []struct {
		name string
		do   func(*TrackProducer) error
		want error
	}{
		{"Accept", (*TrackProducer).Accept, nil},
		{"a group", func(p *TrackProducer) error { return p.WriteFrame([]byte("x")) }, nil},
		{"Finish", (*TrackProducer).Finish, nil},
		{"Abort", func(p *TrackProducer) error { return p.Abort(ErrNotFound) }, ErrNotFound},
		{"every producer gone", func(p *TrackProducer) error { p.Close(); return nil }, ErrDropped},
	}
	for _, tt := range confirm {
		t.Run(tt.name, func(t *testing.T) {
			p, c := request(t)
			if err := c.Accepted(doneCtx); !wouldBlock(err) {
				t.Fatalf("before: Accepted = %v, want it to wait", err)
			}
			noErr(t, tt.name, tt.do(p))
			isErr(t, "Accepted", c.Accepted(doneCtx), tt.want)
		})
	}
	p, _ := request(t)
	noErr(t, "Abort", p.Abort(ErrNotFound))
	isErr(t, "Accept after Abort", p.Accept(), ErrNotFound)
}
