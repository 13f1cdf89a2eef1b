package moq

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// cachedSeqs returns the sequences a track caches.
func cachedSeqs(p *TrackProducer) []uint64 {
	var out []uint64
	for _, g := range p.CachedGroups(0, 1<<62) {
		out = append(out, g.Sequence())
	}
	return out
}

// writeGroup appends a finished group of one frame of n bytes.
func writeGroup(t *testing.T, p *TrackProducer, n int) {
	t.Helper()
	noErr(t, "WriteFrame", p.WriteFrame(make([]byte, n)))
}

func TestCacheEvictsByBytes(t *testing.T) {
	p := newTestTrack(t)
	p.SetCachePolicy(CachePolicy{MaxBytes: 2500})
	for range 5 {
		writeGroup(t, p, 1000)
	}
	if got, want := cachedSeqs(p), []uint64{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("cached %v, want %v: at most 2500 bytes", got, want)
	}
	// The newest group stays whatever its size.
	writeGroup(t, p, 10_000)
	if got, want := cachedSeqs(p), []uint64{5}; !slices.Equal(got, want) {
		t.Fatalf("cached %v, want %v", got, want)
	}
}

// TestCacheEvictsWhileAGroupGrows writes frames into an open group: the
// older groups go as soon as the bytes are over, not at the next group.
func TestCacheEvictsWhileAGroupGrows(t *testing.T) {
	p := newTestTrack(t)
	p.SetCachePolicy(CachePolicy{MaxBytes: 3000})
	writeGroup(t, p, 1000)
	writeGroup(t, p, 1000)
	g, err := p.AppendGroup()
	noErr(t, "AppendGroup", err)
	defer g.Close()
	noErr(t, "WriteFrame", g.WriteFrame(make([]byte, 500)))
	if got := cachedSeqs(p); len(got) != 3 {
		t.Fatalf("cached %v at 2500 bytes", got)
	}
	noErr(t, "WriteFrame", g.WriteFrame(make([]byte, 1000)))
	if got, want := cachedSeqs(p), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("cached %v after the open group grew, want %v", got, want)
	}
	f, err := g.CreateFrame(FrameInfo{Size: 2000})
	noErr(t, "CreateFrame", err)
	f.Close()
	if got, want := cachedSeqs(p), []uint64{2}; !slices.Equal(got, want) {
		t.Fatalf("cached %v after a chunked frame, want %v", got, want)
	}
}

// TestCacheExpiresWithoutNewGroups lets groups age with no new group: they
// are evicted on time all the same, the newest kept.
func TestCacheExpiresWithoutNewGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewTrack(Track{Name: "t"})
		defer p.Close()
		p.SetCachePolicy(CachePolicy{MaxAge: time.Second})
		writeGroup(t, p, 10)
		time.Sleep(500 * time.Millisecond)
		writeGroup(t, p, 10)
		writeGroup(t, p, 10)
		time.Sleep(600 * time.Millisecond) // group 0 is 1.1 s old
		synctest.Wait()
		if got, want := cachedSeqs(p), []uint64{1, 2}; !slices.Equal(got, want) {
			t.Fatalf("cached %v, want %v", got, want)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := cachedSeqs(p), []uint64{2}; !slices.Equal(got, want) {
			t.Fatalf("cached %v, want only the newest %v", got, want)
		}
	})
}

// TestCacheBudgetShared bounds two tracks together: the track that grows
// the total past the budget evicts its own groups.
func TestCacheBudgetShared(t *testing.T) {
	budget := NewCacheBudget(5000)
	a, b := newTestTrack(t), newTestTrack(t)
	a.SetCachePolicy(CachePolicy{Budget: budget})
	b.SetCachePolicy(CachePolicy{Budget: budget})
	for range 3 {
		writeGroup(t, a, 1000)
	}
	for range 3 {
		writeGroup(t, b, 1000)
	}
	if got := budget.Used(); got > 5000 {
		t.Fatalf("budget used %d, want at most 5000", got)
	}
	if got, want := cachedSeqs(a), []uint64{0, 1, 2}; !slices.Equal(got, want) {
		t.Errorf("track a cached %v, want %v untouched", got, want)
	}
	if got, want := cachedSeqs(b), []uint64{1, 2}; !slices.Equal(got, want) {
		t.Errorf("track b cached %v, want %v", got, want)
	}
	// Evicted and closed groups give their bytes back.
	a.SetCacheAge(0)
	b.SetCacheAge(0)
	if got := budget.Used(); got != 2000 {
		t.Fatalf("budget used %d with one group cached per track, want 2000", got)
	}
	// Moving a track to another budget moves its bytes.
	other := NewCacheBudget(1 << 20)
	a.SetCachePolicy(CachePolicy{Budget: other})
	if budget.Used() != 1000 || other.Used() != 1000 {
		t.Fatalf("after the move: %d and %d, want 1000 and 1000", budget.Used(), other.Used())
	}
}

// TestBroadcastCachePolicy applies a broadcast's policy to the tracks
// created in it and requested from it.
func TestBroadcastCachePolicy(t *testing.T) {
	b := newTestBroadcast(t)
	b.SetCachePolicy(CachePolicy{MaxBytes: 2500})
	created, err := b.CreateTrack(Track{Name: "created"})
	noErr(t, "CreateTrack", err)
	defer created.Close()
	d := b.Dynamic()
	defer d.Close()
	consumer, err := b.Consume().SubscribeTrack(Track{Name: "requested"})
	noErr(t, "SubscribeTrack", err)
	defer consumer.Close()
	requested, err := d.RequestedTrack(doneCtx)
	noErr(t, "RequestedTrack", err)
	defer requested.Close()
	for _, p := range []*TrackProducer{created, requested} {
		for range 3 {
			writeGroup(t, p, 1000)
		}
		if got, want := cachedSeqs(p), []uint64{1, 2}; !slices.Equal(got, want) {
			t.Errorf("%s cached %v, want %v", p.Info().Name, got, want)
		}
	}
}

// TestCacheReleasedWithTheTrack closes every handle of a track that caches
// groups: its bytes go back to the shared budget and its expiry timer no
// longer holds it.
func TestCacheReleasedWithTheTrack(t *testing.T) {
	budget := NewCacheBudget(1 << 20)
	p := NewTrack(Track{Name: "t"})
	p.SetCachePolicy(CachePolicy{Budget: budget})
	c := p.Consume()
	for range 3 {
		writeGroup(t, p, 1000)
	}
	noErr(t, "Finish", p.Finish())
	p.Close()
	if got := budget.Used(); got != 3000 {
		t.Fatalf("budget used %d while a consumer can still read, want 3000", got)
	}
	c.Close()
	if got := budget.Used(); got != 0 {
		t.Fatalf("budget used %d once nobody can read the track, want 0", got)
	}
	if p.state.expiry != nil && !p.state.expiryAt.IsZero() {
		t.Fatal("the expiry timer is still armed")
	}
}
