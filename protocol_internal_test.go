package moq

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/transport"
)

func TestShouldReport(t *testing.T) {
	cases := []struct {
		name       string
		sent       bool
		last, rate uint64
		since      time.Duration
		want       bool
	}{
		{"first report", false, 0, 1000, 0, true},
		{"first report of zero", false, 0, 0, 0, true},
		{"after zero, any rate", true, 0, 1, time.Millisecond, true},
		{"after zero, still zero", true, 0, 0, time.Hour, false},
		{"unchanged at once", true, 1000, 1000, probeInterval, false},
		{"25% change at once", true, 1000, 1250, probeInterval, true},
		{"24% change at once", true, 1000, 1240, probeInterval, false},
		{"24% drop at once", true, 1000, 760, probeInterval, false},
		{"12% change halfway", true, 1000, 1120, (probeMaxAge + probeInterval) / 2, false},
		{"13% change halfway", true, 1000, 1130, (probeMaxAge + probeInterval) / 2, true},
		{"unchanged after the max age", true, 1000, 1000, probeMaxAge, true},
		{"unchanged long after", true, 1000, 1000, time.Hour, true},
		{"small change before the interval counts as at the interval", true, 1000, 1100, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := shouldReport(c.sent, c.last, c.rate, c.since); got != c.want {
				t.Errorf("shouldReport(%v, %d, %d, %v) = %v, want %v", c.sent, c.last, c.rate, c.since, got, c.want)
			}
		})
	}
}

func TestReporter(t *testing.T) {
	var r reporter
	start := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		rate uint64
		want bool
	}{
		{0, 1000, true},
		{probeInterval, 1010, false},
		{2 * probeInterval, 2000, true}, // 100% up
		{3 * probeInterval, 2000, false},
		{2*probeInterval + probeMaxAge, 2000, true}, // repeated after the max age
	}
	for i, s := range steps {
		if got := r.due(s.rate, start.Add(s.at)); got != s.want {
			t.Errorf("step %d: due(%d) = %v, want %v", i, s.rate, got, s.want)
		}
	}
}

func TestSendRate(t *testing.T) {
	cases := []struct {
		name  string
		stats transport.ConnectionStats
		want  uint64
	}{
		{"no RTT sample", transport.ConnectionStats{CongestionWindow: 12000}, 0},
		{"no window", transport.ConnectionStats{SmoothedRTT: time.Millisecond}, 0},
		{"12 kB per 10 ms", transport.ConnectionStats{SmoothedRTT: 10 * time.Millisecond, CongestionWindow: 12000}, 9_600_000},
		{"1 MB per 100 ms", transport.ConnectionStats{SmoothedRTT: 100 * time.Millisecond, CongestionWindow: 1 << 20}, 83_886_080},
		{"capped for JavaScript", transport.ConnectionStats{SmoothedRTT: time.Nanosecond, CongestionWindow: math.MaxUint64}, maxReportedRate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sendRate(c.stats); got != c.want {
				t.Errorf("sendRate(%+v) = %d, want %d", c.stats, got, c.want)
			}
		})
	}
}

func TestIsExpired(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name        string
		seq, newest uint64
		age         time.Duration // newest's cache time minus seq's
		maxLatency  time.Duration
		want        bool
	}{
		{"no max latency", 1, 5, time.Hour, 0, false},
		{"the newest group never expires", 5, 5, time.Hour, time.Millisecond, false},
		{"a newer group by sequence only", 6, 5, time.Hour, time.Millisecond, false},
		{"within the latency", 1, 5, 10 * time.Millisecond, 10 * time.Millisecond, false},
		{"past the latency", 1, 5, 11 * time.Millisecond, 10 * time.Millisecond, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := isExpired(c.seq, t0, c.newest, t0.Add(c.age), c.maxLatency); got != c.want {
				t.Errorf("isExpired = %v, want %v", got, c.want)
			}
		})
	}
}

func TestGaps(t *testing.T) {
	set := func(seqs ...uint64) map[uint64]struct{} {
		m := make(map[uint64]struct{})
		for _, s := range seqs {
			m[s] = struct{}{}
		}
		return m
	}
	cases := []struct {
		name     string
		have     map[uint64]struct{}
		from, to uint64
		want     [][2]uint64
	}{
		{"nothing", set(), 0, 4, [][2]uint64{{0, 4}}},
		{"everything", set(0, 1, 2), 0, 2, nil},
		{"holes", set(0, 1, 3, 7), 0, 4, [][2]uint64{{2, 2}, {4, 4}}},
		{"leading hole", set(3, 4), 1, 4, [][2]uint64{{1, 2}}},
		{"outside the range ignored", set(0, 9), 2, 4, [][2]uint64{{2, 4}}},
		{"empty range", set(), 5, 4, nil},
		{"single", set(4), 4, 4, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := gaps(c.have, c.from, c.to); !slices.Equal(got, c.want) {
				t.Errorf("gaps = %v, want %v", got, c.want)
			}
		})
	}
}

// urgencyStream records the urgencies it is given.
type urgencyStream struct {
	transport.SendStream
	urgency int
}

func (s *urgencyStream) SetPriority(u int) { s.urgency = u }

func TestPriorityOrder(t *testing.T) {
	q := newPriorityQueue()
	type entry struct {
		track   uint8
		ordered bool
		group   uint64
	}
	// Inserted in an arbitrary order; want the urgencies below.
	entries := []entry{
		{1, false, 10}, // newest first within an unordered track
		{1, false, 12},
		{1, true, 3}, // oldest first within an ordered track
		{1, true, 2},
		{9, false, 1}, // the highest track priority goes first
	}
	want := []int{3, 2, 5, 4, 1}
	streams := make([]*urgencyStream, len(entries))
	items := make([]*priorityItem, len(entries))
	for i, e := range entries {
		streams[i] = &urgencyStream{urgency: -1}
		items[i] = q.insert(e.track, e.ordered, e.group, streams[i])
	}
	for i, s := range streams {
		if s.urgency != want[i] {
			t.Errorf("entry %+v: urgency %d, want %d", entries[i], s.urgency, want[i])
		}
	}
	// Control streams keep the most urgent level to themselves.
	for _, s := range streams {
		if s.urgency < minUrgency || s.urgency <= controlUrgency {
			t.Errorf("a group stream got urgency %d", s.urgency)
		}
	}
	// A subscription raising its priority moves its streams up.
	items[2].setOrder(10, true)
	if streams[2].urgency != minUrgency {
		t.Errorf("re-ranked stream urgency %d, want %d", streams[2].urgency, minUrgency)
	}
	for _, it := range items {
		it.remove()
	}
	if len(q.items) != 0 {
		t.Errorf("%d items left", len(q.items))
	}
}

func TestOriginPrefersFewerHops(t *testing.T) {
	o := NewOrigin()
	c := o.Consume()
	defer c.Close()
	path := NewPath("p")
	publish := func(hops ...uint64) *BroadcastProducer {
		b := NewBroadcast()
		b.SetHops(hops)
		if !o.PublishBroadcast(path, b.Consume()) {
			t.Fatal("publish refused")
		}
		return b
	}
	expect := func(what string, want ...[]uint64) {
		t.Helper()
		for _, hops := range want {
			a, ok := c.TryAnnounced()
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
		if a, ok := c.TryAnnounced(); ok {
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
		g := wrapGroupProducer(&groupState{sequence: seq, producers: 1})
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

// testServed builds a served subscription over a local track, without a
// stream: enough for the delivery rules, which never write.
func testServed(msg *lite.Subscribe, track *TrackConsumer) *served {
	s := &Session{log: slog.New(slog.DiscardHandler), version: lite.Lite04}
	return newServed(s, msg, track, nil)
}

func TestServedAccounting(t *testing.T) {
	track := NewTrack(Track{Name: "t"})
	defer track.Close()
	consumer := track.Consume()
	defer consumer.Close()
	groups := make(map[uint64]*GroupConsumer)
	group := func(seq uint64) *GroupConsumer {
		if g, ok := groups[seq]; ok {
			return g
		}
		g, err := track.CreateGroup(seq)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		groups[seq] = g.Consume()
		return groups[seq]
	}
	sv := testServed(&lite.Subscribe{StartGroup: lite.OptGroup{Seq: 1, Valid: true}, EndGroup: lite.OptGroup{Seq: 4, Valid: true}}, consumer)
	for _, c := range []struct {
		seq  uint64
		want verdict
	}{{1, serve}, {0, skip}, {2, serve}, {2, skip}, {4, serve}} {
		if got := sv.admit(group(c.seq)); got != c.want {
			t.Errorf("admit(%d) = %v, want %v", c.seq, got, c.want)
		}
	}
	if sv.complete() {
		t.Error("complete with group 3 missing")
	}
	if got, want := sv.missing(), [][2]uint64{{3, 3}}; !slices.Equal(got, want) {
		t.Errorf("missing %v, want %v", got, want)
	}
	if got := sv.admit(group(3)); got != serve {
		t.Errorf("late group 3: %v", got)
	}
	if !sv.complete() || sv.missing() != nil {
		t.Errorf("complete %v, missing %v after every group", sv.complete(), sv.missing())
	}

	// A group past the end completes a range with holes.
	sv = testServed(&lite.Subscribe{StartGroup: lite.OptGroup{Seq: 1, Valid: true}, EndGroup: lite.OptGroup{Seq: 6, Valid: true}}, consumer)
	sv.admit(group(6))
	if sv.complete() {
		t.Error("complete before a group past the end")
	}
	if got := sv.admit(group(7)); got != skip || !sv.complete() {
		t.Errorf("group past the end: %v, complete %v", got, sv.complete())
	}
	if got, want := sv.missing(), [][2]uint64{{1, 5}}; !slices.Equal(got, want) {
		t.Errorf("missing %v, want %v", got, want)
	}

	// An update lowers the start and sets a new end.
	sv.update(&lite.SubscribeUpdate{StartGroup: lite.OptGroup{Seq: 0, Valid: true}, EndGroup: lite.OptGroup{Seq: 9, Valid: true}})
	gen, start, moved, backfill := sv.apply()
	if gen.Err() != nil || start != 0 || !moved {
		t.Errorf("apply: gen %v, start %d, moved %v", gen.Err(), start, moved)
	}
	var seqs []uint64
	for _, g := range backfill {
		seqs = append(seqs, g.Sequence())
	}
	if !slices.Equal(seqs, []uint64{0}) {
		t.Errorf("backfill %v, want the cached groups below the old start: [0]", seqs)
	}
	if sv.complete() {
		t.Error("complete after the end moved past the groups seen")
	}

	// Without an end, a subscription never completes by itself.
	sv = testServed(&lite.Subscribe{}, consumer)
	if sv.start != 7 || !sv.hasStart {
		t.Errorf("start %d (known %v), want the latest group 7", sv.start, sv.hasStart)
	}
	if sv.admit(group(8)) != serve || sv.complete() || sv.missing() != nil {
		t.Error("an unbounded subscription completed")
	}
}

// TestServedMaxLatency runs the expiry rule on the track's cache clock:
// groups too old when reached are not started, and a group being written
// is cancelled once a group newer by more than the max latency exists.
func TestServedMaxLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		track := NewTrack(Track{Name: "t"})
		defer track.Close()
		consumer := track.Consume()
		defer consumer.Close()
		write := func() *GroupConsumer {
			g, err := track.AppendGroup()
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			return g.Consume()
		}
		g0 := write()
		sv := testServed(&lite.Subscribe{StartGroup: lite.OptGroup{Valid: true}, MaxLatency: 50 * time.Millisecond}, consumer)

		// Group 0 is being written.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wctx, wcancel := context.WithCancelCause(ctx)
		w := &groupWriter{seq: 0, created: g0.Created(), cancel: wcancel}
		sv.streams[w] = struct{}{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sv.watchLatency(ctx)
		}()

		time.Sleep(30 * time.Millisecond)
		g1 := write()
		synctest.Wait()
		if wctx.Err() != nil {
			t.Fatal("group 0 expired 30 ms behind with a 50 ms max latency")
		}
		time.Sleep(30 * time.Millisecond)
		write() // 60 ms after group 0
		synctest.Wait()
		if !errors.Is(context.Cause(wctx), errExpired) {
			t.Fatalf("group 0 being written: cause %v, want errExpired", context.Cause(wctx))
		}
		// Group 1 is 30 ms behind: still served; a lower max latency
		// expires it.
		if got := sv.admit(g1); got != serve {
			t.Fatalf("group 1: %v, want serve", got)
		}
		sv.update(&lite.SubscribeUpdate{MaxLatency: 10 * time.Millisecond})
		w1ctx, w1cancel := context.WithCancelCause(ctx)
		sv.mu.Lock()
		sv.streams[&groupWriter{seq: 1, created: g1.Created(), cancel: w1cancel}] = struct{}{}
		sv.signalLocked()
		sv.mu.Unlock()
		synctest.Wait()
		if !errors.Is(context.Cause(w1ctx), errExpired) {
			t.Errorf("group 1 after lowering the max latency: cause %v, want errExpired", context.Cause(w1ctx))
		}
		// A group reached when already too old is not started.
		sv2 := testServed(&lite.Subscribe{StartGroup: lite.OptGroup{Valid: true}, MaxLatency: 10 * time.Millisecond}, consumer)
		if got := sv2.admit(g0); got != expire {
			t.Errorf("an old group reached late: %v, want expire", got)
		}
		cancel()
		<-done
	})
}
