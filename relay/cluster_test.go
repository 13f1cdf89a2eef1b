package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/session"
)

// peerURL is how a relay reaches a peer in these tests: http://, which
// trusts the certificate hash the peer serves.
func peerURL(r *relay.Relay) string {
	return "http://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
}

// announceLog records every announcement a relay's origin makes for one
// path, from the relay's start.
type announceLog struct {
	r    *relay.Relay
	path moq.Path

	mu      sync.Mutex
	changed chan struct{}
	events  []announceEvent
}

type announceEvent struct {
	active bool
	hops   []uint64
}

func watchAnnounces(t *testing.T, r *relay.Relay, path moq.Path) *announceLog {
	l := &announceLog{r: r, path: path, changed: make(chan struct{})}
	view, err := r.Origin().Consume().ConsumeOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	c := view.Announcements()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		for {
			a, err := c.Next(ctx)
			if err != nil {
				return
			}
			if a.Path != path {
				continue
			}
			ev := announceEvent{active: a.Broadcast != nil}
			if ev.active {
				ev.hops = a.Broadcast.Hops()
			}
			l.mu.Lock()
			l.events = append(l.events, ev)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l
}

// snapshot returns the events so far and a channel closed at the next one.
func (l *announceLog) snapshot() ([]announceEvent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events), l.changed
}

// waitFor waits until cond holds for the events so far.
func (l *announceLog) waitFor(ctx context.Context, t *testing.T, what string, cond func([]announceEvent) bool) {
	t.Helper()
	for {
		events, changed := l.snapshot()
		if cond(events) {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("relay %d: waiting for %s; announcements so far %+v", l.r.NodeID(), what, events)
		}
	}
}

// activeWith reports whether the latest event is an announcement with hops.
func activeWith(hops ...uint64) func([]announceEvent) bool {
	return func(events []announceEvent) bool {
		n := len(events)
		return n > 0 && events[n-1].active && slices.Equal(events[n-1].hops, hops)
	}
}

// gone reports whether the path is no longer announced at the relay.
func (l *announceLog) gone(events []announceEvent) bool {
	return len(events) > 0 && !events[len(events)-1].active && l.absent()
}

// absent reports whether the relay has no broadcast at the path.
func (l *announceLog) absent() bool {
	_, err := l.r.Origin().ConsumeBroadcast(l.path)
	return errors.Is(err, moq.ErrNotFound)
}

// publishAt publishes a broadcast at path with a track "data" through a
// session to r. Closing the broadcast withdraws it.
func publishAt(t *testing.T, ctx context.Context, r *relay.Relay, path moq.Path) (*moq.BroadcastProducer, *moq.TrackProducer) {
	t.Helper()
	origin := moq.NewOrigin()
	broadcast, _ := origin.CreateBroadcast(path)
	track, err := broadcast.CreateTrack(moq.Track{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(track.Close)
	dial(t, ctx, r, "quic", session.Config{Publish: origin.Consume()})
	return broadcast, track
}

// awaitGroup reads sub until group seq arrives.
func awaitGroup(ctx context.Context, t *testing.T, sub *moq.TrackConsumer, seq uint64) {
	t.Helper()
	for {
		g, err := sub.NextGroup(ctx)
		if err != nil {
			t.Fatalf("waiting for group %d: %v", seq, err)
		}
		if g.Sequence() == seq {
			return
		}
	}
}

// startNode starts a relay with a node id and peers.
func startNode(t *testing.T, id uint64, peers ...*relay.Relay) *relay.Relay {
	t.Helper()
	var urls []string
	for _, p := range peers {
		urls = append(urls, peerURL(p))
	}
	r := startRelayWith(t, relay.Config{Cluster: relay.ClusterConfig{NodeID: id, Peers: urls}})
	if r.NodeID() != id {
		t.Fatalf("node id %d, want %d", r.NodeID(), id)
	}
	return r
}

// TestClusterLine connects three relays in a line, A-B-C, publishes at A
// and subscribes at C. Each relay appends its id to the hops; none
// announces the broadcast back the way it came, so every relay sees it
// announced exactly once and ended exactly once. A fetch at C of a group
// older than anything C or B cached travels up to the publisher.
func TestClusterLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := moq.NewPath("cluster", "line")
	a := startNode(t, 1)
	b := startNode(t, 2, a)
	c := startNode(t, 3, b)
	logs := []*announceLog{watchAnnounces(t, a, path), watchAnnounces(t, b, path), watchAnnounces(t, c, path)}

	broadcast, track := publishAt(t, ctx, a, path)
	for g := range 3 {
		writeGroup(t, track, g)
	}

	wantHops := [][]uint64{nil, {1}, {1, 2}}
	for i, l := range logs {
		l.waitFor(ctx, t, fmt.Sprintf("hops %v", wantHops[i]), activeWith(wantHops[i]...))
	}

	// Data flows A -> B -> C.
	sess := dial(t, ctx, c, "quic", session.Config{})
	sub, err := sess.ConsumeBroadcast(path).SubscribeTrack(moq.Track{Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := track.Used(ctx); err != nil {
		t.Fatal(err)
	}
	writeGroup(t, track, 3)
	awaitGroup(ctx, t, sub, 3)

	// Group 0 predates every relay's subscription: the fetch goes upstream.
	g, err := sess.Fetch(ctx, path, "data", 0, 0)
	if err != nil {
		t.Fatalf("fetch through the relays: %v", err)
	}
	for f := range e2eFrames {
		frame, err := g.ReadFrame(ctx)
		if err != nil {
			t.Fatalf("fetched frame %d: %v", f, err)
		}
		if want := payload(0, f); !slices.Equal(frame, want) {
			t.Fatalf("fetched frame %d differs", f)
		}
	}
	if _, err := g.ReadFrame(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("fetched group does not end: %v", err)
	}

	broadcast.Close()
	for _, l := range logs {
		l.waitFor(ctx, t, "the end", l.gone)
	}
	for i, l := range logs {
		events, _ := l.snapshot()
		want := []announceEvent{{active: true, hops: wantHops[i]}, {active: false}}
		if !slices.EqualFunc(events, want, func(x, y announceEvent) bool {
			return x.active == y.active && slices.Equal(x.hops, y.hops)
		}) {
			t.Errorf("relay %d announced %+v, want %+v", l.r.NodeID(), events, want)
		}
	}
}

// TestClusterTriangle connects three relays in a ring and publishes at A:
// B and C learn the broadcast both directly and through each other, prefer
// the direct path, never take back a copy that went through themselves,
// and all withdraw it once the publisher leaves, with a handful of
// announcements each rather than a storm.
func TestClusterTriangle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := moq.NewPath("cluster", "ring")
	a := startNode(t, 1)
	b := startNode(t, 2, a)
	c := startNode(t, 3, a, b)
	logs := []*announceLog{watchAnnounces(t, a, path), watchAnnounces(t, b, path), watchAnnounces(t, c, path)}

	broadcast, track := publishAt(t, ctx, a, path)

	logs[0].waitFor(ctx, t, "the local broadcast", activeWith())
	logs[1].waitFor(ctx, t, "the direct path", activeWith(1))
	logs[2].waitFor(ctx, t, "the direct path", activeWith(1))

	for _, r := range []*relay.Relay{b, c} {
		sess := dial(t, ctx, r, "quic", session.Config{})
		sub, err := sess.ConsumeBroadcast(path).SubscribeTrack(moq.Track{Name: "data"})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if err := track.Used(ctx); err != nil {
			t.Fatal(err)
		}
		writeGroup(t, track, int(r.NodeID()))
		awaitGroup(ctx, t, sub, r.NodeID())
	}

	broadcast.Close()
	for _, l := range logs {
		l.waitFor(ctx, t, "the end", l.gone)
	}
	for _, l := range logs {
		events, _ := l.snapshot()
		id := l.r.NodeID()
		for _, ev := range events {
			if slices.Contains(ev.hops, id) {
				t.Errorf("relay %d took back a copy that went through itself: %+v", id, events)
			}
		}
		if len(events) > 8 {
			t.Errorf("relay %d made %d announcements: %+v", id, len(events), events)
		}
	}
	if events, _ := logs[0].snapshot(); len(events) != 2 {
		t.Errorf("the origin relay made %d announcements, want 2 (no copy came back): %+v", len(events), events)
	}
}
