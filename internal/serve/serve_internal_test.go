package serve

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/internal/engine"
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
		{"unchanged at once", true, 1000, 1000, ReportInterval, false},
		{"25% change at once", true, 1000, 1250, ReportInterval, true},
		{"24% change at once", true, 1000, 1240, ReportInterval, false},
		{"24% drop at once", true, 1000, 760, ReportInterval, false},
		{"12% change halfway", true, 1000, 1120, (maxAge + ReportInterval) / 2, false},
		{"13% change halfway", true, 1000, 1130, (maxAge + ReportInterval) / 2, true},
		{"unchanged after the max age", true, 1000, 1000, maxAge, true},
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
		{ReportInterval, 1010, false},
		{2 * ReportInterval, 2000, true}, // 100% up
		{3 * ReportInterval, 2000, false},
		{2*ReportInterval + maxAge, 2000, true}, // repeated after the max age
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
	q := &Priorities{}
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
	items := make([]*Item, len(entries))
	for i, e := range entries {
		streams[i] = &urgencyStream{urgency: -1}
		items[i] = q.Insert(e.track, e.ordered, e.group, streams[i])
	}
	for i, s := range streams {
		if s.urgency != want[i] {
			t.Errorf("entry %+v: urgency %d, want %d", entries[i], s.urgency, want[i])
		}
	}
	// Control streams keep the most urgent level to themselves.
	for _, s := range streams {
		if s.urgency < minUrgency || s.urgency <= ControlUrgency {
			t.Errorf("a group stream got urgency %d", s.urgency)
		}
	}
	// A subscription raising its priority moves its streams up.
	items[2].SetOrder(10, true)
	if streams[2].urgency != minUrgency {
		t.Errorf("re-ranked stream urgency %d, want %d", streams[2].urgency, minUrgency)
	}
	for _, it := range items {
		it.Remove()
	}
	if len(q.items) != 0 {
		t.Errorf("%d items left", len(q.items))
	}
}

// testServed builds a subscription over a local track with no sender:
// enough for the delivery rules, which never write.
func testServed(opts engine.SubscribeOptions, track *moq.TrackConsumer) *Subscription {
	return NewSubscription(track, opts, &Priorities{}, nil, nil, slog.New(slog.DiscardHandler))
}

func seq(v uint64) *uint64 { return &v }

func TestServedAccounting(t *testing.T) {
	track := moq.NewTrack(moq.Track{Name: "t"})
	defer track.Close()
	consumer := track.Consume()
	defer consumer.Close()
	groups := make(map[uint64]*moq.GroupConsumer)
	group := func(seq uint64) *moq.GroupConsumer {
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
	sv := testServed(engine.SubscribeOptions{Start: seq(1), End: seq(4)}, consumer)
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
	sv = testServed(engine.SubscribeOptions{Start: seq(1), End: seq(6)}, consumer)
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
	sv.Update(engine.SubscribeOptions{Start: seq(0), End: seq(9)})
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
	sv = testServed(engine.SubscribeOptions{}, consumer)
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
		track := moq.NewTrack(moq.Track{Name: "t"})
		defer track.Close()
		consumer := track.Consume()
		defer consumer.Close()
		write := func() *moq.GroupConsumer {
			g, err := track.AppendGroup()
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			return g.Consume()
		}
		g0 := write()
		sv := testServed(engine.SubscribeOptions{Start: seq(0), MaxLatency: 50 * time.Millisecond}, consumer)

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
		sv.Update(engine.SubscribeOptions{MaxLatency: 10 * time.Millisecond})
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
		sv2 := testServed(engine.SubscribeOptions{Start: seq(0), MaxLatency: 10 * time.Millisecond}, consumer)
		if got := sv2.admit(g0); got != expire {
			t.Errorf("an old group reached late: %v, want expire", got)
		}
		cancel()
		<-done
	})
}
