package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq"
	"github.com/moqgo/moq/relay"
	"github.com/moqgo/moq/relay/relaytest"
	"github.com/moqgo/moq/session"
)

// The benchmarks in this file run a relay, its publishers and its subscribers
// in one process over loopback; see BENCHMARKS.md for how to read them.

// benchRelay runs a relay on a free loopback port until the benchmark ends.
func benchRelay(b *testing.B) *relay.Relay { return relaytest.Start(b, relay.Config{}) }

// benchURL is the relay's URL for "quic" or "webtransport".
func benchURL(r *relay.Relay, transport string) string {
	if transport == "quic" {
		return "moqt://127.0.0.1:" + strconv.Itoa(r.Port())
	}
	return "https://127.0.0.1:" + strconv.Itoa(r.Port()) + "/"
}

func benchDial(b *testing.B, ctx context.Context, r *relay.Relay, transport string, cfg session.Config) *session.Session {
	b.Helper()
	cfg.Fingerprint = r.Fingerprint()
	cfg.Logger = slog.New(slog.DiscardHandler)
	sess, err := session.Dial(ctx, benchURL(r, transport), &cfg)
	if err != nil {
		b.Fatalf("dial %s: %v", transport, err)
	}
	return sess
}

// waitAnnounced waits until the relay has the broadcast at path.
func waitAnnounced(b *testing.B, ctx context.Context, r *relay.Relay, path moq.Path) {
	b.Helper()
	view, err := r.Origin().Consume().ConsumeOnly(path)
	if err != nil {
		b.Fatal(err)
	}
	announced := view.Announcements()
	defer announced.Close()
	if _, err := announced.Next(ctx); err != nil {
		b.Fatalf("broadcast %s never reached the relay: %v", path, err)
	}
}

const (
	relayFrameSize      = 32 << 10 // as transport's loopback throughput benchmarks
	relayFramesPerGroup = 32
	relayGroupsInFlight = 4 // groups written ahead of the slowest subscriber
)

// BenchmarkRelayThroughput pushes 32 KiB frames in 1 MiB groups from one
// publisher session through the relay to subs subscriber sessions, as fast
// as the slowest subscriber allows. The MB/s is the relay's egress (bytes
// delivered to all subscribers); compare it with the raw QUIC loopback
// benchmark in transport/quic.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, transport := range []string{"quic", "webtransport"} {
		for _, subs := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/subs=%d", transport, subs), func(b *testing.B) {
				benchmarkRelayThroughput(b, transport, subs)
			})
		}
	}
}

func benchmarkRelayThroughput(b *testing.B, transport string, subs int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := benchRelay(b)
	path := moq.NewPath("bench/throughput")

	origin := moq.NewOrigin()
	broadcast, _ := origin.CreateBroadcast(path)
	defer broadcast.Close()
	track, err := broadcast.CreateTrack(moq.Track{Name: "data"})
	if err != nil {
		b.Fatal(err)
	}
	defer track.Close()
	// Groups must stay cached until the publisher's session picks them up:
	// a second is far more than the flow-control window below needs.
	track.SetCacheAge(time.Second)
	pub := benchDial(b, ctx, r, transport, session.Config{Publish: origin.Consume()})
	defer pub.Close()
	waitAnnounced(b, ctx, r, path)

	// Each subscriber counts the groups it has completely received.
	var (
		completed = make([]atomic.Int64, subs)
		progress  = make(chan struct{}, 1)
		readers   sync.WaitGroup
		failed    atomic.Pointer[error]
	)
	sessions := make([]*session.Session, subs)
	for i := range subs {
		sessions[i] = benchDial(b, ctx, r, transport, session.Config{})
		defer sessions[i].Close()
	}
	// A subscription starts at the newest group: write one first so every
	// subscriber has a known starting point.
	if err := track.WriteFrame([]byte("start")); err != nil {
		b.Fatal(err)
	}
	for i, sess := range sessions {
		consumer, err := sess.ConsumeBroadcast(path).SubscribeTrack(moq.Track{Name: "data"})
		if err != nil {
			b.Fatal(err)
		}
		// The default 30 s cache would hold 30 s of this benchmark's data.
		if p, err := consumer.Produce(); err == nil {
			p.SetCacheAge(time.Second)
			p.Close()
		}
		first, err := consumer.NextGroup(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := first.ReadFrame(ctx); err != nil {
			b.Fatal(err)
		}
		readers.Go(func() {
			defer consumer.Close()
			for {
				g, err := consumer.NextGroup(ctx)
				if err != nil {
					if !errors.Is(err, io.EOF) {
						failed.Store(&err)
					}
					return
				}
				for {
					if _, err := g.ReadFrame(ctx); err != nil {
						break
					}
				}
				completed[i].Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}

	frame := make([]byte, relayFrameSize)
	b.SetBytes(int64(relayFrameSize * subs))
	b.ResetTimer()
	var (
		group  *moq.GroupProducer
		frames int
		groups int64
	)
	// Not b.Loop: the wait for the last groups must be timed too.
	for range b.N {
		if group == nil {
			// Flow control: stay at most relayGroupsInFlight groups ahead.
			waitGroups(b, completed, progress, groups-relayGroupsInFlight)
			if group, err = track.AppendGroup(); err != nil {
				b.Fatal(err)
			}
			groups++
		}
		if err := group.WriteFrame(frame); err != nil {
			b.Fatal(err)
		}
		if frames++; frames == relayFramesPerGroup {
			_ = group.Finish()
			group.Close()
			group, frames = nil, 0
		}
	}
	if group != nil {
		_ = group.Finish()
		group.Close()
	}
	waitGroups(b, completed, progress, groups)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	_ = track.Finish()
	readers.Wait()
}

// waitGroups waits until every subscriber has completed n groups.
func waitGroups(b *testing.B, completed []atomic.Int64, progress <-chan struct{}, n int64) {
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for slowest(completed) < n {
		select {
		case <-progress:
		case <-timer.C:
			b.Fatalf("subscribers stalled at %d of %d groups", slowest(completed), n)
		}
	}
}

func slowest(counts []atomic.Int64) int64 {
	low := counts[0].Load()
	for i := range counts[1:] {
		low = min(low, counts[i+1].Load())
	}
	return low
}

// BenchmarkSessionSetup measures connecting a session to the relay and
// closing it: QUIC or WebTransport handshake with a self-signed ECDSA
// certificate, then moq-lite setup. serial does one at a time; parallel
// keeps 16 in progress.
func BenchmarkSessionSetup(b *testing.B) {
	for _, transport := range []string{"quic", "webtransport"} {
		b.Run(transport+"/serial", func(b *testing.B) {
			r := benchRelay(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				sess := benchDial(b, ctx, r, transport, session.Config{})
				_ = sess.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "setups/s")
		})
		b.Run(transport+"/parallel", func(b *testing.B) {
			r := benchRelay(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sess := benchDial(b, ctx, r, transport, session.Config{})
					_ = sess.Close()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "setups/s")
		})
	}
}

// idleBatch is how many idle sessions or subscriptions one benchmark
// operation opens before measuring the memory they hold.
const idleBatch = 200

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkIdleSessions opens 200 idle sessions to the relay per operation
// and reports the live heap and goroutines each one holds. Both ends are in
// this process, so the figures are the client's and the relay's together.
func BenchmarkIdleSessions(b *testing.B) {
	for _, transport := range []string{"quic", "webtransport"} {
		b.Run(transport, func(b *testing.B) {
			r := benchRelay(b)
			ctx := context.Background()
			var bytes, goroutines float64
			for b.Loop() {
				heap0, g0 := heapInUse(), runtime.NumGoroutine()
				sessions := make([]*session.Session, idleBatch)
				for i := range sessions {
					sessions[i] = benchDial(b, ctx, r, transport, session.Config{})
				}
				settle(b)
				bytes += float64(heapInUse()-heap0) / idleBatch
				goroutines += float64(runtime.NumGoroutine()-g0) / idleBatch
				closeAll(sessions)
				settle(b)
			}
			b.ReportMetric(bytes/float64(b.N), "heap-B/session")
			b.ReportMetric(goroutines/float64(b.N), "goroutines/session")
		})
	}
}

// settle waits for the process to go quiet after sessions or subscriptions
// were opened or closed: both ends run in this process and the relay exposes
// no session count, so the sign that every handshake and teardown finished
// is the number of goroutines staying the same for 100 ms.
func settle(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, stable := -1, 0
	for stable < 5 {
		if time.Now().After(deadline) {
			b.Fatal("goroutines never settled")
		}
		n := runtime.NumGoroutine()
		if n == last {
			stable++
		} else {
			last, stable = n, 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func closeAll(sessions []*session.Session) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { _ = s.Close() })
	}
	wg.Wait()
}

// BenchmarkIdleSubscriptions has one subscriber session subscribe to 200
// tracks of one publisher session through the relay per operation, with no
// data flowing, and reports the live heap and goroutines each subscription
// holds at the publisher, the relay (upstream and downstream) and the
// subscriber together.
func BenchmarkIdleSubscriptions(b *testing.B) {
	r := benchRelay(b)
	ctx := context.Background()
	path := moq.NewPath("bench/idle")
	origin := moq.NewOrigin()
	broadcast, _ := origin.CreateBroadcast(path)
	defer broadcast.Close()
	dynamic := broadcast.Dynamic()
	defer dynamic.Close()
	// Serve every requested track, idle, until the benchmark ends.
	served := make(chan *moq.TrackProducer, idleBatch)
	serveCtx, stopServing := context.WithCancel(ctx)
	var serving sync.WaitGroup
	serving.Go(func() {
		for {
			t, err := dynamic.RequestedTrack(serveCtx)
			if err != nil {
				return
			}
			served <- t
		}
	})
	defer func() {
		stopServing()
		serving.Wait()
	}()
	pub := benchDial(b, ctx, r, "quic", session.Config{Publish: origin.Consume()})
	defer pub.Close()
	waitAnnounced(b, ctx, r, path)
	sub := benchDial(b, ctx, r, "quic", session.Config{})
	defer sub.Close()
	remote := sub.ConsumeBroadcast(path)

	var bytes, goroutines float64
	for n := 0; b.Loop(); n++ {
		heap0, g0 := heapInUse(), runtime.NumGoroutine()
		consumers := make([]*moq.TrackConsumer, idleBatch)
		producers := make([]*moq.TrackProducer, idleBatch)
		for i := range consumers {
			c, err := remote.SubscribeTrack(moq.Track{Name: fmt.Sprintf("t%d-%d", n, i)})
			if err != nil {
				b.Fatal(err)
			}
			consumers[i] = c
		}
		// Every subscription has reached the publisher once its track is served.
		for i := range producers {
			select {
			case producers[i] = <-served:
			case <-time.After(30 * time.Second):
				b.Fatalf("only %d of %d subscriptions reached the publisher", i, idleBatch)
			}
		}
		settle(b)
		bytes += float64(heapInUse()-heap0) / idleBatch
		goroutines += float64(runtime.NumGoroutine()-g0) / idleBatch
		for i := range consumers {
			consumers[i].Close()
			_ = producers[i].Finish()
			producers[i].Close()
		}
		settle(b)
	}
	b.ReportMetric(bytes/float64(b.N), "heap-B/sub")
	b.ReportMetric(goroutines/float64(b.N), "goroutines/sub")
}
