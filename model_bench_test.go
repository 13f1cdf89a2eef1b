package moq

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// benchmarkFanout writes one single-frame group per iteration and has n
// consumers read it. ns/delivery is the cost of getting one frame to one
// consumer; allocs/op counts everything one written frame costs for all n.
func benchmarkFanout(b *testing.B, n int) {
	ctx := context.Background()
	p := NewTrack(Track{Name: "fanout"})
	defer p.Close()
	p.SetCacheAge(0) // keep only the newest group cached
	consumers := make([]*TrackConsumer, n)
	for i := range consumers {
		consumers[i] = p.Consume()
		defer consumers[i].Close()
	}
	payload := make([]byte, 1200)

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.WriteFrame(payload); err != nil {
			b.Fatal(err)
		}
		for _, c := range consumers {
			g, err := c.NextGroup(ctx)
			if err != nil {
				b.Fatal(err)
			}
			data, err := g.ReadFrame(ctx)
			if err != nil || &data[0] != &payload[0] {
				b.Fatalf("ReadFrame: %v (copied: %v)", err, err == nil)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

func BenchmarkFanout1(b *testing.B)    { benchmarkFanout(b, 1) }
func BenchmarkFanout100(b *testing.B)  { benchmarkFanout(b, 100) }
func BenchmarkFanout1000(b *testing.B) { benchmarkFanout(b, 1000) }

// BenchmarkFanoutWaiting has n goroutines blocked in NextGroup; each
// iteration writes one frame and waits until all n have read it, so it
// measures the wake-up path.
func BenchmarkFanoutWaiting(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			p := NewTrack(Track{Name: "fanout"})
			defer p.Close()
			p.SetCacheAge(0)
			payload := make([]byte, 1200)
			var read, done sync.WaitGroup
			for range n {
				c := p.Consume()
				done.Go(func() {
					defer c.Close()
					for {
						g, err := c.NextGroup(ctx)
						if err != nil { // io.EOF once the track finishes
							return
						}
						if _, err := g.ReadFrame(ctx); err != nil {
							return
						}
						read.Done()
					}
				})
			}
			b.ReportAllocs()
			for b.Loop() {
				read.Add(n)
				if err := p.WriteFrame(payload); err != nil {
					b.Fatal(err)
				}
				read.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
			_ = p.Finish()
			done.Wait()
		})
	}
}

// BenchmarkGroupChurn creates, fills, finishes and releases one group per
// iteration on a track that evicts every older group as it goes.
func BenchmarkGroupChurn(b *testing.B) {
	p := NewTrack(Track{Name: "churn"})
	defer p.Close()
	p.SetCacheAge(0)
	c := p.Consume()
	defer c.Close()
	payload := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		g, err := p.AppendGroup()
		if err != nil {
			b.Fatal(err)
		}
		for range 4 {
			if err := g.WriteFrame(payload); err != nil {
				b.Fatal(err)
			}
		}
		if err := g.Finish(); err != nil {
			b.Fatal(err)
		}
		g.Close()
	}
	if n := liveGroups(p); n > 2 {
		b.Fatalf("%d groups cached, eviction is not keeping up", n)
	}
}

// BenchmarkGroupFrameEviction writes frames past the group frame cap so
// every write evicts the oldest frame.
func BenchmarkGroupFrameEviction(b *testing.B) {
	p := NewTrack(Track{Name: "evict"})
	defer p.Close()
	g, err := p.AppendGroup()
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	payload := make([]byte, 10)
	b.ReportAllocs()
	for b.Loop() {
		if err := g.WriteFrame(payload); err != nil {
			b.Fatal(err)
		}
	}
}
