package moq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
)

func newTestBroadcast(t *testing.T) *BroadcastProducer {
	t.Helper()
	b := NewBroadcast()
	t.Cleanup(b.Close)
	return b
}

func newTestDynamic(t *testing.T, b *BroadcastProducer) *BroadcastDynamic {
	t.Helper()
	d := b.Dynamic()
	t.Cleanup(d.Close)
	return d
}

func subscribe(t *testing.T, c *BroadcastConsumer, name string) *TrackConsumer {
	t.Helper()
	tc, err := c.SubscribeTrack(Track{Name: name})
	noErr(t, "SubscribeTrack("+name+")", err)
	t.Cleanup(tc.Close)
	return tc
}

// requestNow returns the next requested track, failing if none is pending.
func requestNow(t *testing.T, d *BroadcastDynamic) *TrackProducer {
	t.Helper()
	p, err := d.RequestedTrack(doneCtx)
	noErr(t, "RequestedTrack", err)
	t.Cleanup(p.Close)
	return p
}

// noRequest fails unless RequestedTrack would block.
func noRequest(t *testing.T, d *BroadcastDynamic) {
	t.Helper()
	if p, err := d.RequestedTrack(doneCtx); !wouldBlock(err) {
		t.Fatalf("RequestedTrack should block, got %v, %v", p, err)
	}
}

// broadcastOpen fails unless Closed would block.
func broadcastOpen(t *testing.T, c *BroadcastConsumer) {
	t.Helper()
	if err := c.Closed(doneCtx); !wouldBlock(err) {
		t.Fatalf("broadcast should be open, Closed = %v", err)
	}
}

// pendingRequests counts the requests not yet handed to a dynamic handler.
func pendingRequests(b *BroadcastProducer) int {
	s := b.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func TestBroadcastInsert(t *testing.T) {
	b := newTestBroadcast(t)
	track1 := NewTrack(Track{Name: "track1"})
	t.Cleanup(track1.Close)

	// Inserting works before any consumer exists.
	noErr(t, "InsertTrack", b.InsertTrack(track1))
	appendGroups(t, track1, 1)

	c := b.Consume()
	sub1 := subscribe(t, c, "track1")
	nextGroupNow(t, sub1)

	track2 := NewTrack(Track{Name: "track2"})
	t.Cleanup(track2.Close)
	noErr(t, "InsertTrack", b.InsertTrack(track2))

	sub2 := subscribe(t, b.Consume(), "track2")
	noGroupYet(t, sub2)
	appendGroups(t, track2, 1)
	nextGroupNow(t, sub2)
}

func TestBroadcastClosed(t *testing.T) {
	b := newTestBroadcast(t)
	newTestDynamic(t, b)
	c := b.Consume()
	broadcastOpen(t, c)

	track1, err := b.CreateTrack(Track{Name: "track1"})
	noErr(t, "CreateTrack", err)
	t.Cleanup(track1.Close)
	track1c := subscribe(t, c, "track1")
	track2 := subscribe(t, c, "track2") // a request

	// Aborting the broadcast cascades to its tracks and requests.
	noErr(t, "Abort", b.Abort(ErrCancel))
	trackFailed(t, track2, ErrCancel)
	trackFailed(t, track1c, ErrCancel)
	if !track1.IsClosed() {
		t.Fatal("track1 producer not closed")
	}
	isErr(t, "Closed", c.Closed(doneCtx), ErrCancel)
	_, err = c.SubscribeTrack(Track{Name: "track1"})
	isErr(t, "SubscribeTrack after abort", err, ErrCancel)
}

func TestBroadcastRequests(t *testing.T) {
	b := NewBroadcast()
	d := b.Dynamic()
	b.Close() // the dynamic handler keeps the broadcast alive

	c := b.Consume()
	c2 := &BroadcastConsumer{state: c.state}

	track1 := subscribe(t, c, "track1")
	trackOpen(t, track1)
	noGroupYet(t, track1)

	// Requests are deduplicated while track1 is open.
	track2 := subscribe(t, c2, "track1")
	if !track2.SameTrack(track1) {
		t.Fatal("second subscription made a new track")
	}

	// There is exactly one request.
	track3 := requestNow(t, d)
	noRequest(t, d)
	probe := consume(t, track3)
	if !probe.SameTrack(track1) {
		t.Fatal("requested producer is a different track")
	}

	// Every consumer gets the group.
	appendGroups(t, track3, 1)
	nextGroupNow(t, track1)
	nextGroupNow(t, track2)

	// Closing the handler fails pending requests (error, not finish).
	track4 := subscribe(t, c, "track2")
	d.Close()
	trackFailed(t, track4, ErrNotFound)

	_, err := c2.SubscribeTrack(Track{Name: "track3"})
	if err == nil {
		t.Fatal("SubscribeTrack succeeded on an ended broadcast")
	}
	isErr(t, "SubscribeTrack", err, ErrDropped)
}

func TestBroadcastStaleProducer(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)
	c := b.Consume()

	track1 := subscribe(t, c, "track1")
	producer1 := requestNow(t, d)
	appendGroups(t, producer1, 1)
	noErr(t, "Finish", producer1.Finish())
	producer1.Close() // the publisher went away

	if err := trackEnded(t, track1); err != nil {
		t.Fatalf("track1 should have finished: %v", err)
	}

	// A new subscription gets a new request, not the stale track.
	track2 := subscribe(t, c, "track1")
	trackOpen(t, track2)
	if track2.SameTrack(track1) {
		t.Fatal("subscription reused the stale track")
	}
	producer2 := requestNow(t, d)
	appendGroups(t, producer2, 1)
	nextGroupNow(t, track2)
}

func TestBroadcastRequestedUnused(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)

	consumer1, err := b.Consume().SubscribeTrack(Track{Name: "unknown_track"})
	noErr(t, "SubscribeTrack", err)
	producer1 := requestNow(t, d)
	if err := producer1.Unused(doneCtx); !wouldBlock(err) {
		t.Fatalf("producer should be used, Unused = %v", err)
	}

	// Another subscription shares the track and keeps it used.
	consumer2, err := b.Consume().SubscribeTrack(Track{Name: "unknown_track"})
	noErr(t, "SubscribeTrack", err)
	if !consumer2.SameTrack(consumer1) {
		t.Fatal("second subscription made a new track")
	}
	consumer1.Close()
	if err := producer1.Unused(doneCtx); !wouldBlock(err) {
		t.Fatalf("producer should still be used, Unused = %v", err)
	}

	consumer2.Close()
	noErr(t, "Unused", producer1.Unused(doneCtx))

	// The broadcast forgot the track at once (no background task): the
	// next subscription is a fresh request.
	consumer3, err := b.Consume().SubscribeTrack(Track{Name: "unknown_track"})
	noErr(t, "SubscribeTrack", err)
	producer2 := requestNow(t, d)
	if producer2.SameTrack(producer1) {
		t.Fatal("got the forgotten track again")
	}
	consumer3.Close()
	noErr(t, "Unused", producer2.Unused(doneCtx))
}

func TestBroadcastPendingRequestWithdrawn(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)
	tc, err := b.Consume().SubscribeTrack(Track{Name: "gone"})
	noErr(t, "SubscribeTrack", err)
	if n := pendingRequests(b); n != 1 {
		t.Fatalf("pending = %d", n)
	}
	tc.Close() // nobody wants it before the handler saw it
	if n := pendingRequests(b); n != 0 {
		t.Fatalf("pending = %d after the only subscriber left", n)
	}
	noRequest(t, d)
	isErr(t, "withdrawn track", tc.Closed(doneCtx), ErrCancel)
}

func TestBroadcastSubscribeDedupByName(t *testing.T) {
	b := newTestBroadcast(t)
	p, err := b.CreateTrack(Track{Name: "video", Priority: 3})
	noErr(t, "CreateTrack", err)
	t.Cleanup(p.Close)
	c := b.Consume()
	var subs []*TrackConsumer
	for range 5 {
		subs = append(subs, subscribe(t, c, "video"))
	}
	for _, s := range subs[1:] {
		if !s.SameTrack(subs[0]) {
			t.Fatal("subscriptions of one name got different tracks")
		}
	}
	if subs[0].Info().Priority != 3 {
		t.Fatalf("priority %d", subs[0].Info().Priority)
	}
	// Each subscription is its own consumer handle.
	for _, s := range subs[:4] {
		s.Close()
	}
	if err := p.Unused(doneCtx); !wouldBlock(err) {
		t.Fatalf("Unused = %v with one subscription open", err)
	}
	subs[4].Close()
	noErr(t, "Unused", p.Unused(doneCtx))
}

func TestBroadcastNotFoundWithoutDynamic(t *testing.T) {
	b := newTestBroadcast(t)
	_, err := b.Consume().SubscribeTrack(Track{Name: "missing"})
	isErr(t, "SubscribeTrack", err, ErrNotFound)
}

func TestBroadcastDuplicateAndStaleTracks(t *testing.T) {
	b := newTestBroadcast(t)
	p, err := b.CreateTrack(Track{Name: "a"})
	noErr(t, "CreateTrack", err)
	_, err = b.CreateTrack(Track{Name: "a"})
	isErr(t, "CreateTrack duplicate", err, ErrDuplicate)
	other := NewTrack(Track{Name: "a"})
	t.Cleanup(other.Close)
	isErr(t, "InsertTrack duplicate", b.InsertTrack(other), ErrDuplicate)

	// Once the first track is gone its name is free again.
	p.Close()
	noErr(t, "InsertTrack over a dropped track", b.InsertTrack(other))
	sub := subscribe(t, b.Consume(), "a")
	probe := consume(t, other)
	if !sub.SameTrack(probe) {
		t.Fatal("subscription did not get the replacement")
	}
}

func TestBroadcastRemoveTrack(t *testing.T) {
	b := newTestBroadcast(t)
	p, err := b.CreateTrack(Track{Name: "a"})
	noErr(t, "CreateTrack", err)
	t.Cleanup(p.Close)
	noErr(t, "RemoveTrack", b.RemoveTrack("a"))
	isErr(t, "RemoveTrack again", b.RemoveTrack("a"), ErrNotFound)
	_, err = b.Consume().SubscribeTrack(Track{Name: "a"})
	isErr(t, "SubscribeTrack", err, ErrNotFound)
	if p.IsClosed() {
		t.Fatal("RemoveTrack closed the track")
	}
}

func TestBroadcastUniqueTrack(t *testing.T) {
	b := newTestBroadcast(t)
	var names []string
	for range 3 {
		p, err := b.UniqueTrack(".json")
		noErr(t, "UniqueTrack", err)
		t.Cleanup(p.Close)
		names = append(names, p.Info().Name)
	}
	want := []string{"0.json", "1.json", "2.json"}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("names = %v, want %v", names, want)
		}
	}
}

func TestBroadcastDropped(t *testing.T) {
	b := NewBroadcast()
	clone := b.Clone()
	track, err := b.CreateTrack(Track{Name: "t"})
	noErr(t, "CreateTrack", err)
	defer track.Close()
	c := b.Consume()

	b.Close()
	b.Close() // idempotent: the clone keeps it open
	broadcastOpen(t, c)
	clone.Close()
	isErr(t, "Closed", c.Closed(doneCtx), ErrDropped)
	_, err = c.SubscribeTrack(Track{Name: "t"})
	isErr(t, "SubscribeTrack", err, ErrDropped)
	// Tracks keep their own producers.
	if track.IsClosed() {
		t.Fatal("dropping the broadcast closed its track")
	}
	_, err = b.CreateTrack(Track{Name: "u"})
	isErr(t, "CreateTrack on closed handle", err, ErrClosed)
	isErr(t, "Abort on closed handle", b.Abort(nil), ErrClosed)
}

func TestBroadcastDynamicWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBroadcast(t)
		d := newTestDynamic(t, b)
		got := make(chan string)
		go func() {
			p, err := d.RequestedTrack(context.Background())
			if err != nil {
				t.Error(err)
				close(got)
				return
			}
			got <- p.Info().Name
			p.Close()
		}()
		synctest.Wait()
		subscribe(t, b.Consume(), "late")
		if name := <-got; name != "late" {
			t.Fatalf("requested %q", name)
		}
	})
}

func TestBroadcastRequestedTrackEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(b *BroadcastProducer, d *BroadcastDynamic)
		want error
	}{
		{"abort", func(b *BroadcastProducer, _ *BroadcastDynamic) { _ = b.Abort(ErrUnauthorized) }, ErrUnauthorized},
		{"abort without error", func(b *BroadcastProducer, _ *BroadcastDynamic) { _ = b.Abort(nil) }, ErrCancel},
		{"handler closed", func(_ *BroadcastProducer, d *BroadcastDynamic) { d.Close() }, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBroadcast()
				d := b.Dynamic()
				t.Cleanup(b.Close)
				t.Cleanup(d.Close)
				errc := make(chan error)
				go func() {
					_, err := d.RequestedTrack(context.Background())
					errc <- err
				}()
				synctest.Wait()
				tt.end(b, d)
				isErr(t, "RequestedTrack", <-errc, tt.want)
			})
		})
	}
}

func TestBroadcastOrderOfRequests(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)
	c := b.Consume()
	for _, n := range []string{"a", "b", "c"} {
		subscribe(t, c, n)
	}
	for _, want := range []string{"a", "b", "c"} {
		if got := requestNow(t, d).Info().Name; got != want {
			t.Fatalf("request %q, want %q", got, want)
		}
	}
}

func TestBroadcastSameBroadcast(t *testing.T) {
	b1, b2 := newTestBroadcast(t), newTestBroadcast(t)
	if !b1.Consume().SameBroadcast(b1.Consume()) || b1.Consume().SameBroadcast(b2.Consume()) {
		t.Fatal("SameBroadcast is wrong")
	}
}

func TestBroadcastGarbageCollectedProducer(t *testing.T) {
	c := func() *BroadcastConsumer { return NewBroadcast().Consume() }()
	eventually(t, func(ctx context.Context) bool { return errors.Is(c.Closed(ctx), ErrDropped) })
}

func TestBroadcastConcurrentSubscribers(t *testing.T) {
	// serve is the handler's work for one request: one finished group.
	serve := func(p *TrackProducer) {
		_ = p.WriteFrame([]byte(p.Info().Name))
		_ = p.Finish()
		p.Close()
	}
	tests := []struct {
		name string
		// start begins serving the requests of d until ctx ends; stop
		// waits for the work it started.
		start func(ctx context.Context, d *BroadcastDynamic) (stop func())
	}{
		{"RequestedTrack", func(ctx context.Context, d *BroadcastDynamic) func() {
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					p, err := d.RequestedTrack(ctx)
					if err != nil {
						return
					}
					serve(p)
				}
			})
			return wg.Wait
		}},
		{"HandleRequests", func(_ context.Context, d *BroadcastDynamic) func() {
			var wg sync.WaitGroup
			d.HandleRequests(func(p *TrackProducer) { wg.Go(func() { serve(p) }) })
			return wg.Wait
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBroadcast(t)
			d := newTestDynamic(t, b)
			const (
				names       = 4
				subscribers = 32
			)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := tt.start(ctx, d)

			var wg sync.WaitGroup
			c := b.Consume()
			for i := range subscribers {
				name := string(rune('a' + i%names))
				wg.Go(func() {
					tc, err := c.SubscribeTrack(Track{Name: name})
					if err != nil {
						t.Error(err)
						return
					}
					defer tc.Close()
					for {
						g, err := tc.NextGroup(ctx)
						if err == io.EOF {
							return
						}
						if err != nil {
							t.Error(err)
							return
						}
						data, err := g.ReadFrame(ctx)
						if err != nil || string(data) != name {
							t.Errorf("track %s: read %q, %v", name, data, err)
						}
					}
				})
			}
			wg.Wait()
			cancel()
			stop()
		})
	}
}

// handled records the tracks a RequestHandler received, closing them at the
// end of the test. It runs on the requesting goroutine, so the tests that
// subscribe from one goroutine need no lock; the mutex serves the others.
type handled struct {
	t      *testing.T
	mu     sync.Mutex
	tracks []*TrackProducer
}

func (h *handled) handle(p *TrackProducer) {
	h.mu.Lock()
	h.tracks = append(h.tracks, p)
	h.mu.Unlock()
	h.t.Cleanup(p.Close)
}

func (h *handled) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range h.tracks {
		out = append(out, p.Info().Name)
	}
	return out
}

func (h *handled) last() *TrackProducer {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.tracks) == 0 {
		h.t.Fatal("no track was handled")
	}
	return h.tracks[len(h.tracks)-1]
}

func TestBroadcastHandleRequests(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)
	h := &handled{t: t}
	d.HandleRequests(h.handle)
	c := b.Consume()

	// The handler runs before SubscribeTrack returns.
	sub := subscribe(t, c, "video")
	if got := fmt.Sprint(h.names()); got != "[video]" {
		t.Fatalf("handled %s, want [video]", got)
	}
	p := h.last()
	if !consume(t, p).SameTrack(sub) {
		t.Fatal("the handler got another track than the subscriber")
	}
	// Nothing was queued for RequestedTrack.
	if n := pendingRequests(b); n != 0 {
		t.Fatalf("pending = %d", n)
	}
	noRequest(t, d)

	// What the handler writes reaches the subscriber.
	noErr(t, "WriteFrame", p.WriteFrame([]byte("x")))
	nextGroupNow(t, sub)

	// A second subscription shares the track: no second request.
	if !subscribe(t, c, "video").SameTrack(sub) {
		t.Fatal("second subscription made a new track")
	}
	if n := len(h.names()); n != 1 {
		t.Fatalf("handled %d requests, want 1", n)
	}
}

func TestBroadcastHandleRequestsQueued(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)
	c := b.Consume()
	subA := subscribe(t, c, "a")
	subB := subscribe(t, c, "b")
	if n := pendingRequests(b); n != 2 {
		t.Fatalf("pending = %d, want 2", n)
	}

	// The queued requests go to the handler at once, oldest first.
	h := &handled{t: t}
	d.HandleRequests(h.handle)
	if got := fmt.Sprint(h.names()); got != "[a b]" {
		t.Fatalf("handled %s, want [a b]", got)
	}
	if n := pendingRequests(b); n != 0 {
		t.Fatalf("pending = %d after the handover", n)
	}
	noRequest(t, d)
	for i, sub := range []*TrackConsumer{subA, subB} {
		if !consume(t, h.tracks[i]).SameTrack(sub) { // h.tracks: no handler runs now
			t.Fatalf("handled track %d is not the one subscribed", i)
		}
	}

	// Later requests go to the handler as they come.
	subscribe(t, c, "c")
	if got := fmt.Sprint(h.names()); got != "[a b c]" {
		t.Fatalf("handled %s, want [a b c]", got)
	}
}

func TestBroadcastHandleRequestsUnused(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)
	h := &handled{t: t}
	d.HandleRequests(h.handle)

	sub, err := b.Consume().SubscribeTrack(Track{Name: "t"})
	noErr(t, "SubscribeTrack", err)
	first := h.last()
	if err := first.Unused(doneCtx); !wouldBlock(err) {
		t.Fatalf("handled track should be used, Unused = %v", err)
	}
	sub.Close()
	noErr(t, "Unused", first.Unused(doneCtx))

	// The broadcast forgot the track: the next subscription is a new
	// request for the handler.
	subscribe(t, b.Consume(), "t")
	if n := len(h.names()); n != 2 {
		t.Fatalf("handled %d requests, want 2", n)
	}
	if h.last().SameTrack(first) {
		t.Fatal("got the forgotten track again")
	}
}

func TestBroadcastHandleRequestsDropped(t *testing.T) {
	tests := []struct {
		name string
		// change runs after the handler is installed on d; other is a
		// second dynamic handle, open unless change closes it.
		change func(d, other *BroadcastDynamic)
		// want: "handler" (the handler gets the request), "queue"
		// (RequestedTrack does) or "not found".
		want string
	}{
		{"installed", func(_, _ *BroadcastDynamic) {}, "handler"},
		{"other dynamic closed", func(_, other *BroadcastDynamic) { other.Close() }, "handler"},
		{"installer closed, other open", func(d, _ *BroadcastDynamic) { d.Close() }, "handler"},
		{"last dynamic closed", func(d, other *BroadcastDynamic) { other.Close(); d.Close() }, "not found"},
		{"removed with nil", func(d, _ *BroadcastDynamic) { d.HandleRequests(nil) }, "queue"},
		{"replaced on a closed handle", func(d, other *BroadcastDynamic) {
			other.Close()
			other.HandleRequests(nil) // ignored: other is closed
		}, "handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestBroadcast(t) // keeps the broadcast alive throughout
			d := newTestDynamic(t, b)
			other := newTestDynamic(t, b)
			h := &handled{t: t}
			d.HandleRequests(h.handle)
			tt.change(d, other)

			sub, err := b.Consume().SubscribeTrack(Track{Name: "t"})
			if tt.want == "not found" {
				if sub != nil || !errors.Is(err, ErrNotFound) {
					t.Fatalf("SubscribeTrack = %v, %v; want ErrNotFound", sub, err)
				}
				if n := len(h.names()); n != 0 {
					t.Fatalf("a dropped handler got %d requests", n)
				}
				// A new dynamic queues again: the handler is gone for good.
				d2 := newTestDynamic(t, b)
				subscribe(t, b.Consume(), "u")
				if n := len(h.names()); n != 0 {
					t.Fatalf("a dropped handler got %d requests", n)
				}
				if got := requestNow(t, d2).Info().Name; got != "u" {
					t.Fatalf("requested %q", got)
				}
				return
			}
			noErr(t, "SubscribeTrack", err)
			t.Cleanup(sub.Close)
			switch tt.want {
			case "handler":
				if n := len(h.names()); n != 1 {
					t.Fatalf("handled %d requests, want 1", n)
				}
				if n := pendingRequests(b); n != 0 {
					t.Fatalf("pending = %d", n)
				}
			case "queue":
				if n := len(h.names()); n != 0 {
					t.Fatalf("a removed handler got %d requests", n)
				}
				if !consume(t, requestNow(t, d)).SameTrack(sub) {
					t.Fatal("queued request is another track")
				}
			}
		})
	}
}

func TestBroadcastHandleRequestsAbortedBroadcast(t *testing.T) {
	b := newTestBroadcast(t)
	d := newTestDynamic(t, b)
	h := &handled{t: t}
	d.HandleRequests(h.handle)
	sub := subscribe(t, b.Consume(), "t")
	noErr(t, "Abort", b.Abort(ErrUnauthorized))
	// The handled track ends with the broadcast, and nothing new is asked.
	trackFailed(t, sub, ErrUnauthorized)
	if !h.last().IsClosed() {
		t.Fatal("handled track still open after the broadcast ended")
	}
	_, err := b.Consume().SubscribeTrack(Track{Name: "u"})
	isErr(t, "SubscribeTrack", err, ErrUnauthorized)
	if n := len(h.names()); n != 1 {
		t.Fatalf("handled %d requests, want 1", n)
	}
}

// The handler runs with no lock held: it may use the broadcast, here to
// serve a request from another track of the same broadcast.
func TestBroadcastHandleRequestsReentrant(t *testing.T) {
	b := newTestBroadcast(t)
	source, err := b.CreateTrack(Track{Name: "source"})
	noErr(t, "CreateTrack", err)
	t.Cleanup(source.Close)
	noErr(t, "WriteFrame", source.WriteFrame([]byte("from source")))

	d := newTestDynamic(t, b)
	var handlerErr error
	d.HandleRequests(func(p *TrackProducer) {
		defer p.Close()
		src, err := b.Consume().SubscribeTrack(Track{Name: "source"})
		if err != nil {
			handlerErr = err
			_ = p.Abort(err)
			return
		}
		defer src.Close()
		g, err := src.NextGroup(doneCtx)
		if err == nil {
			var data []byte
			if data, err = g.ReadFrame(doneCtx); err == nil {
				err = p.WriteFrame(data)
			}
		}
		handlerErr = err
	})
	alias := subscribe(t, b.Consume(), "alias")
	noErr(t, "handler", handlerErr)
	data, err := nextGroupNow(t, alias).ReadFrame(doneCtx)
	if err != nil || string(data) != "from source" {
		t.Fatalf("alias: %q, %v", data, err)
	}
}
