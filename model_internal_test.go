package moq

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestOriginPrefersFewerHops(t *testing.T) {
	o := NewOrigin()
	c := o.Consume().Announcements()
	defer c.Close()
	path := NewPath("p")
	publish := func(hops ...uint64) *BroadcastProducer {
		b := NewBroadcast()
		b.SetHops(hops)
		if err := o.PublishBroadcast(path, b.Consume()); err != nil {
			t.Fatalf("publish refused: %v", err)
		}
		return b
	}
	expect := func(what string, want ...[]uint64) {
		t.Helper()
		for _, hops := range want {
			a, ok := c.TryNext()
			if !ok {
				t.Fatalf("%s: no announcement, want hops %v", what, hops)
			}
			switch {
			case hops == nil && a.Broadcast != nil:
				t.Fatalf("%s: announced %v, want an unannouncement", what, a.Broadcast.Hops())
			case hops != nil && (a.Broadcast == nil || !slices.Equal(a.Broadcast.Hops(), hops)):
				t.Fatalf("%s: got %+v, want hops %v", what, a, hops)
			}
		}
		if a, ok := c.TryNext(); ok {
			t.Fatalf("%s: unexpected announcement %+v", what, a)
		}
	}
	far := publish(1, 2, 3)
	expect("first", []uint64{1, 2, 3})
	near := publish(1)
	expect("shorter replaces", nil, []uint64{1})
	farther := publish(4, 5, 6, 7)
	expect("longer waits as backup")
	mid := publish(8, 9)
	expect("still longer")
	near.Close()
	expect("best backup promoted", nil, []uint64{8, 9})
	mid.Close()
	expect("next best", nil, []uint64{1, 2, 3})
	far.Close()
	expect("last one", nil, []uint64{4, 5, 6, 7})
	farther.Close()
	expect("gone", nil)
	if got := NewBroadcast().Consume().Hops(); got != nil {
		t.Errorf("a new broadcast has hops %v", got)
	}
}

func TestFetchGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := NewBroadcast()
	defer b.Close()
	track, err := b.CreateTrack(Track{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer track.Close()
	for range 3 {
		if err := track.WriteFrame([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c := b.Consume()
	if g, err := c.FetchGroup(ctx, "t", 1, 0); err != nil || g == nil || g.Sequence() != 1 {
		t.Fatalf("cached group: %v, %v", g, err)
	}
	for _, name := range []string{"t", "missing"} {
		seq := uint64(0)
		if name == "t" {
			// Evict group 0 by hand: older than the latest, not cached.
			track.state.mu.Lock()
			delete(track.state.bySeq, 0)
			track.state.mu.Unlock()
		}
		if _, err := c.FetchGroup(ctx, name, seq, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("FetchGroup(%s, %d) = %v, want ErrNotFound without a handler", name, seq, err)
		}
	}

	// A group newer than the latest is waited for.
	future := make(chan *GroupConsumer, 1)
	go func() {
		g, err := c.FetchGroup(ctx, "t", 4, 0)
		if err != nil {
			t.Error(err)
		}
		future <- g
	}()
	for range 2 {
		if err := track.WriteFrame([]byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	if g := <-future; g == nil || g.Sequence() != 4 {
		t.Fatalf("future group %v", g)
	}

	// Past the end of a finished track.
	if err := track.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FetchGroup(ctx, "t", 5, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("past the end: %v, want ErrNotFound", err)
	}

	// A handler answers what the cache cannot, while a dynamic is open.
	d := b.Dynamic()
	var asked []uint64
	d.HandleFetch(func(_ context.Context, name string, seq uint64, prio uint8) (*GroupConsumer, error) {
		asked = append(asked, seq)
		g := NewGroup(seq)
		defer g.Close()
		_ = g.Finish()
		return g.Consume(), nil
	})
	if g, err := c.FetchGroup(ctx, "t", 0, 7); err != nil || g.Sequence() != 0 {
		t.Fatalf("handled fetch: %v, %v", g, err)
	}
	if g, err := c.FetchGroup(ctx, "t", 2, 7); err != nil || g.Sequence() != 2 || len(asked) != 1 {
		t.Fatalf("cached fetch went to the handler: %v, %v, asked %v", g, err, asked)
	}
	d.Close()
	if _, err := c.FetchGroup(ctx, "t", 0, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("after the dynamic closed: %v, want ErrNotFound", err)
	}
}
